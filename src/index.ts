export * from './errors.js';
export * from './bytes/index.js';
export * from './codecs/index.js';
export * from './channels/index.js';
