/**
 * Python's pickle format, the plain-data subset (protocols 0 to 5): a reader that never imports
 * or calls anything, and a writer whose output `pickle.loads` and `dill.loads` read. Sans-I/O: no
 * `node:*` import.
 */
export { pickle } from './writer.js';
export type { PickleOptions } from './writer.js';
export { unpickle } from './reader.js';
export type { UnpickleOptions } from './reader.js';
export { tuple, asTuple, isTuple } from './tuples.js';
export { PickleError } from './errors.js';
export type { PickleErrorCode } from './errors.js';
