/**
 * DOM helpers for the console. Everything from the network goes into the page as text
 * (`textContent`, `value`, attribute values set one by one); nothing is ever parsed as HTML.
 */

type Child = Node | string | null | undefined | false;

/** `el('button', { type: 'button', class: 'x' }, 'text')`: attributes as strings, children as text or nodes. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | boolean | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`page has no #${id}`);
  return e as T;
}

/** A byte count for people (1.5 MiB). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** Appends text to a `<pre>` and keeps at most `max` characters of its end. */
export function appendCapped(pre: HTMLElement, text: string, max: number): void {
  const next = (pre.textContent ?? '') + text;
  pre.textContent = next.length > max ? next.slice(next.length - max) : next;
  pre.scrollTop = pre.scrollHeight;
}
