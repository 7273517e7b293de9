import {
  DEFAULT_MAX_FRAME_SIZE,
  FLAG_BYTES_RESPONSE_CONTINUATION,
  FLAG_BYTES_RESPONSE_EOS,
  FLAG_ERROR_RESPONSE_APPLICATION,
  FLAG_ERROR_RESPONSE_PROTOCOL,
  FRAME_TYPE_BYTES_RESPONSE,
  FRAME_TYPE_ERROR_RESPONSE,
} from './constants.js';
import type { Frame } from './frame.js';
import { toBytes, type BytesLike } from './requests.js';

/**
 * The frames of a bytes response (Mercurial's `createbytesresponseframesfrombytes`): one `eos`
 * frame when the data fits in `maxFrameSize`, otherwise frames of `maxFrameSize` bytes flagged
 * `continuation` and a last one flagged `eos` (never an empty trailing frame).
 */
export function bytesResponseFrames(data: Uint8Array, maxFrameSize: number = DEFAULT_MAX_FRAME_SIZE): Frame[] {
  if (data.length <= maxFrameSize) return [{ type: FRAME_TYPE_BYTES_RESPONSE, flags: FLAG_BYTES_RESPONSE_EOS, payload: data }];
  return responseChunkFrames(data, true, maxFrameSize);
}

/**
 * Frames for one chunk of a streamed bytes response: `continuation` frames of at most
 * `maxFrameSize` bytes, the last flagged `eos` when `eos` is set (an empty `eos` frame when the
 * chunk is empty). An empty chunk without `eos` gives no frame.
 */
export function responseChunkFrames(chunk: Uint8Array, eos: boolean, maxFrameSize: number = DEFAULT_MAX_FRAME_SIZE): Frame[] {
  const frames: Frame[] = [];
  if (chunk.length === 0) {
    if (eos) frames.push({ type: FRAME_TYPE_BYTES_RESPONSE, flags: FLAG_BYTES_RESPONSE_EOS, payload: chunk });
    return frames;
  }
  for (let o = 0; o < chunk.length; o += maxFrameSize) {
    const end = Math.min(o + maxFrameSize, chunk.length);
    const last = end === chunk.length && eos;
    frames.push({ type: FRAME_TYPE_BYTES_RESPONSE, flags: last ? FLAG_BYTES_RESPONSE_EOS : FLAG_BYTES_RESPONSE_CONTINUATION, payload: chunk.subarray(o, end) });
  }
  return frames;
}

/**
 * An error-response frame (Mercurial's `createerrorframe`). The message is cut at `maxFrameSize`
 * bytes, since an error response is a single frame (Mercurial asserts instead).
 */
export function errorFrame(message: BytesLike, kind: { protocol?: boolean; application?: boolean }, maxFrameSize: number = DEFAULT_MAX_FRAME_SIZE): Frame {
  let flags = 0;
  if (kind.protocol) flags |= FLAG_ERROR_RESPONSE_PROTOCOL;
  if (kind.application) flags |= FLAG_ERROR_RESPONSE_APPLICATION;
  const bytes = toBytes(message);
  return { type: FRAME_TYPE_ERROR_RESPONSE, flags, payload: bytes.length > maxFrameSize ? bytes.subarray(0, maxFrameSize) : bytes };
}
