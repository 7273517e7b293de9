export { ByteQueue } from './byte-queue.js';
export { ByteWriter } from './byte-writer.js';
export {
  utf8Decode,
  utf8DecodeStrict,
  utf8Encode,
  base64Encode,
  base64Decode,
  concatBytes,
  describeBytes,
} from './text.js';
