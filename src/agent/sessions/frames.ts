/**
 * Session-frame helpers shared by the session kinds: the frame stream over a raw stream, pumping
 * a readable into frames with backpressure, and the client's frame loop up to EXIT.
 */
import type { Duplex, PassThrough } from 'node:stream';
import { channel } from '../../channels/node-channel.js';
import { ConnectionClosedError, WirekitError } from '../../errors.js';
import { RemoteCommandError } from '../../protocols/control/errors.js';
import { FrameStream } from '../frame-stream.js';
import type { KeepaliveOptions } from '../keepalive.js';
import type { Logger } from '../log.js';
import { decodeError, decodeExit, encodeError, FrameType, sessionCodec, type ExitStatus, type SessionFrame } from '../session-frames.js';

/** Session frames over the raw stream `io` (frame payloads up to `maxFrameBytes`). */
export function frameStream(io: Duplex, options: { maxFrameBytes?: number; keepalive?: KeepaliveOptions }): FrameStream {
  const codec = sessionCodec({ maxFrameLength: options.maxFrameBytes });
  return new FrameStream(channel(io, codec), codec, options.keepalive ?? {});
}

/** Writes `data`, resolving when `w` can take more (or is gone). */
export async function writeWithBackpressure(w: NodeJS.WritableStream & { destroyed?: boolean }, data: Uint8Array): Promise<void> {
  if (w.destroyed) return;
  if (w.write(data)) return;
  await writable(w);
}

/** Sends what `src` produces as frames of `type`, pausing it while the socket is full. Resolves at its end. */
export function pump(src: NodeJS.ReadableStream, fs: FrameStream, type: typeof FrameType.STDOUT | typeof FrameType.STDERR | typeof FrameType.DATA): Promise<void> {
  return new Promise((resolve) => {
    src.on('data', (d: Uint8Array) => {
      if (!fs.send(type, d)) {
        src.pause();
        fs.drained().then(
          () => src.resume(),
          () => src.resume(),
        );
      }
    });
    src.on('end', resolve);
    src.on('close', resolve);
    src.on('error', resolve);
  });
}

/** The daemon's answer to a session that failed: an ERROR frame, unless the peer is gone anyway. */
export function reportSessionError(fs: FrameStream, what: string, err: unknown, log: Logger): void {
  log.debug(`${what} session: ${(err as Error).message}`);
  if (err instanceof WirekitError && err.code !== 'WK_PEER_DEAD' && err.code !== 'WK_CONNECTION_CLOSED') fs.send(FrameType.ERROR, encodeError(err.code, err.message));
}

/**
 * Client side of session `cmd`: reads session frames until EXIT (resolves with it) or ERROR
 * (rejects with `RemoteCommandError`, the daemon's code as `remoteCode`) or a dropped connection
 * (rejects). `onFrame` handles the session-specific types and returns false for unexpected ones.
 */
export async function runClientSession(cmd: string, fs: FrameStream, onFrame: (f: SessionFrame) => Promise<boolean>): Promise<ExitStatus> {
  let status: ExitStatus | undefined;
  let failure: Error | undefined;
  try {
    await fs.run(async (f) => {
      if (f.type === FrameType.EXIT) {
        status = decodeExit(f.payload);
        return;
      }
      if (f.type === FrameType.ERROR) {
        // The last frame of a session: stop reading (the daemon may leave the stream open).
        const e = decodeError(f.payload);
        failure = new RemoteCommandError(cmd, e.message, { code: e.code });
        throw failure;
      }
      if (!(await onFrame(f))) throw new WirekitError('WK_PROTOCOL', `unexpected frame type ${f.type} from the daemon`, { origin: 'remote' });
    });
  } catch (err) {
    failure ??= err as Error;
  } finally {
    fs.close();
  }
  if (status) return status;
  throw failure ?? new ConnectionClosedError('daemon closed the session without an exit status');
}

/** Writes session output to a local stream, resolving when it can take more. */
export function writeOut(s: PassThrough, data: Uint8Array): Promise<void> | void {
  if (s.destroyed) return;
  if (s.write(data)) return;
  return writable(s);
}

/**
 * Resolves when `w` can take more, or is gone (closed or failed). Both listeners go once either
 * fires, so a long output with many waits leaves none behind (no MaxListenersExceededWarning).
 */
export function writable(w: NodeJS.EventEmitter): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      w.removeListener('drain', done);
      w.removeListener('close', done);
      w.removeListener('error', done);
      resolve();
    };
    w.on('drain', done);
    w.on('close', done);
    w.on('error', done);
  });
}
