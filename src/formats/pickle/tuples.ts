/** Which arrays stand for Python tuples: shared by the reader (marks them) and the writer (reads the mark). */
const tuples = new WeakSet<readonly unknown[]>();

/** Makes an array that the pickle writer emits as a Python tuple. */
export function tuple<T extends unknown[]>(...items: T): T {
  tuples.add(items);
  return items;
}

/** Marks an existing array as a tuple (for the writer) and returns it. */
export function asTuple<T extends unknown[]>(items: T): T {
  tuples.add(items);
  return items;
}

/** True for arrays read from a pickled tuple or made by `tuple()`. */
export function isTuple(value: unknown): boolean {
  return Array.isArray(value) && tuples.has(value);
}
