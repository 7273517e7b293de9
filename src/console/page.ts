/**
 * The console's page and stylesheet, as the hub serves them (src/hub/console-assets.ts). The page is
 * a static shell: no inline script or style, no data from the hub; `app.js` fills it in through the
 * DOM with text only.
 */

/** The page, its assets under `base` (`/assets/<hash>/`). */
export function consolePage(base: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>wirekit hub</title>
<link rel="stylesheet" href="${base}vendor/xterm.css">
<link rel="stylesheet" href="${base}console.css">
<script type="module" src="${base}app.js"></script>
</head>
<body>
<header id="top">
  <h1>wirekit hub</h1>
  <span id="whoami" aria-live="polite"></span>
  <button id="logout" type="button" hidden>Log out</button>
</header>
<main>
  <section id="login-view" hidden>
    <form id="login-form" autocomplete="on">
      <h2>Log in</h2>
      <label>User <input id="login-user" name="username" autocomplete="username" required></label>
      <label>Password <input id="login-pass" name="password" type="password" autocomplete="current-password" required></label>
      <button type="submit">Log in</button>
      <p id="login-error" class="error" role="alert"></p>
    </form>
  </section>
  <section id="fleet-view" hidden>
    <div id="fleet-bar">
      <h2>Fleet <span id="fleet-count"></span></h2>
      <label>Filter <input id="filter" type="search" placeholder="id, or key=regex" autocomplete="off" spellcheck="false"></label>
      <span id="monitor-state" aria-live="polite"></span>
    </div>
    <table id="fleet">
      <thead><tr><th>id</th><th>hostname</th><th>properties</th><th>connected since</th><th>open</th></tr></thead>
      <tbody id="fleet-body"></tbody>
    </table>
    <div id="panes"></div>
  </section>
</main>
</body>
</html>
`;
}

export const CONSOLE_CSS = `
:root { color-scheme: light dark; --bg: #fff; --fg: #111; --muted: #666; --line: #ccc; --accent: #0a5; --err: #c22; --pane: #1e1e1e; }
@media (prefers-color-scheme: dark) { :root { --bg: #15171a; --fg: #e8e8e8; --muted: #999; --line: #333; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--fg); }
header#top { display: flex; align-items: center; gap: 1em; padding: .4em 1em; border-bottom: 1px solid var(--line); }
header#top h1 { font-size: 1.1em; margin: 0; flex: 1; }
main { padding: .5em 1em; }
button { font: inherit; padding: .2em .7em; cursor: pointer; }
button:focus-visible, input:focus-visible, a:focus-visible { outline: 2px solid var(--accent); outline-offset: 1px; }
#login-form { display: grid; gap: .6em; max-width: 20em; margin: 3em auto; }
#login-form label { display: grid; gap: .2em; }
.error { color: var(--err); min-height: 1.2em; }
#fleet-bar { display: flex; flex-wrap: wrap; align-items: baseline; gap: 1em; }
#fleet-bar h2 { font-size: 1em; margin: .3em 0; }
#filter { width: 16em; }
#monitor-state { color: var(--muted); }
#fleet { border-collapse: collapse; width: 100%; margin: .5em 0 1em; }
#fleet th, #fleet td { text-align: left; padding: .25em .5em; border-bottom: 1px solid var(--line); vertical-align: top; }
#fleet td.props { font-family: ui-monospace, monospace; font-size: .9em; white-space: pre-wrap; word-break: break-all; }
#fleet tr.denied { color: var(--muted); }
#fleet tr.denied td:first-child::after { content: " (no access)"; }
#fleet td.open { white-space: nowrap; }
#fleet td.open button { margin-right: .3em; }
#panes { display: flex; flex-wrap: wrap; gap: .8em; align-items: flex-start; }
.pane { border: 1px solid var(--line); border-radius: 4px; display: flex; flex-direction: column; resize: both; overflow: hidden;
  width: min(100%, 760px); height: 420px; min-width: 240px; min-height: 160px; background: var(--bg); }
.pane > .bar { display: flex; flex-wrap: wrap; gap: .4em; align-items: center; padding: .2em .4em; border-bottom: 1px solid var(--line); font-size: .9em; }
.pane > .bar .title { font-weight: 600; flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.pane > .bar .state, .pane > .bar .cwd { color: var(--muted); }
.pane > .bar .cwd { font-family: ui-monospace, monospace; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; max-width: 40%; }
.pane > .bar .state.ended { color: var(--err); }
.pane .term { flex: 1; min-height: 0; background: var(--pane); padding: 2px; }
.pane.dragover .term { outline: 3px dashed var(--accent); outline-offset: -3px; }
.pane .exec-form, .pane .files-form { display: flex; flex-wrap: wrap; gap: .4em; padding: .4em; }
.pane .exec-form input[name=cmd], .pane .files-form input { flex: 1; min-width: 8em; font-family: ui-monospace, monospace; }
.pane .out { flex: 1; overflow: auto; margin: 0; padding: .4em; font: 12px/1.35 ui-monospace, monospace; white-space: pre-wrap; word-break: break-all; border-top: 1px solid var(--line); }
.pane .out.stderr { color: var(--err); max-height: 35%; }
.pane .status { padding: .2em .4em; font-size: .9em; border-top: 1px solid var(--line); }
.pane progress { width: 10em; }
.pane .keys { display: none; gap: .3em; padding: .3em; border-top: 1px solid var(--line); overflow-x: auto; }
.pane .keys button { flex: 1 1 0; min-width: 0; min-height: 2.4em; padding: .3em 0; font-family: ui-monospace, monospace; }
@media (max-width: 640px), (pointer: coarse) { .pane .keys { display: flex; } }
@media (max-width: 640px) {
  main { padding: .3em; }
  #fleet thead { display: none; }
  #fleet tr { display: block; border-bottom: 1px solid var(--line); padding: .3em 0; }
  #fleet td { display: block; border: 0; padding: .1em .3em; }
  .pane { width: 100%; min-width: 0; height: 60vh; resize: vertical; }
  header#top { padding: .3em .5em; gap: .5em; }
  #filter { width: auto; flex: 1; min-width: 0; }
  #fleet-bar label { display: flex; flex: 1; gap: .4em; align-items: baseline; min-width: 12em; }
  #fleet td.open { white-space: normal; }
  /* Thumb-sized targets. */
  button { min-height: 2.6em; padding: .3em .9em; }
  .pane .keys button { padding: .3em 0; }
  #fleet td.open button { margin: .15em .3em .15em 0; }
  .pane input { min-height: 2.4em; font-size: 16px; }
}
`;
