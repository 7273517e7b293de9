import http from 'node:http';
import type net from 'node:net';
import { FrameReader } from '../../codecs/codec.js';
import { CodecError } from '../../codecs/errors.js';
import type { SocketAddress } from '../../channels/connect.js';
import { ConnectionClosedError } from '../../errors.js';
import { CommandRunner, type CommandHandler, type FrameServerOptions } from './command-runner.js';
import { FRAME_TYPE_COMMAND_NAME, FRAMES_MEDIA_TYPE } from './constants.js';
import { encodeFrames, frameCodec, type Frame } from './frame.js';
import { listenOn } from './node-server.js';
import { ServerReactor } from './server-reactor.js';

/** Options of the half-duplex HTTP transport. */
export interface HttpServeOptions extends FrameServerOptions {
  /** URL path that accepts frame requests. Default `/frames`. */
  path?: string;
  /** Largest request body, refused with 413 (from Content-Length before reading, or as it arrives). Default 16 MiB. */
  maxBodySize?: number;
  /** Most commands in one request body; more are refused with 413. Default 10 000. */
  maxCommandsPerRequest?: number;
  /**
   * Largest output held for one request until its body has been read (the transport is half
   * duplex, so responses wait): more is refused with 413 and the commands are aborted. Default 16 MiB.
   */
  maxBufferedOutput?: number;
}

/**
 * A `node:http` request listener serving Mercurial's frame protocol, half duplex:
 *
 * - `POST <path>` with `Content-Type: application/mercurial-exp-framing-0001`; the body is a
 *   sequence of request frames (one or more commands).
 * - `200` with the same media type; the body is the response frames, in command order. The
 *   server reactor runs in deferred-output mode: nothing is sent until the whole request body
 *   has been read, then everything is released in order.
 * - Errors: `404` other paths, `405` other methods, `415` other media types, `413` bodies over
 *   `maxBodySize`, more than `maxCommandsPerRequest` commands, or more than `maxBufferedOutput`
 *   bytes of responses held before the body ended; `400` malformed bodies (bad frames, truncated
 *   frames, protocol errors), each with a `text/plain` message.
 */
export function frameHttpListener(handler: CommandHandler, options: HttpServeOptions = {}): http.RequestListener {
  const urlPath = options.path ?? '/frames';
  const maxBody = options.maxBodySize ?? 16 * 1024 * 1024;
  return (req, res) => {
    void serveRequest(req, res, handler, options, urlPath, maxBody).catch(() => {
      if (!res.headersSent) reply(res, 500, 'internal error');
      else res.destroy();
    });
  };
}

function reply(res: http.ServerResponse, status: number, message: string, extra: Record<string, string> = {}): void {
  const body = Buffer.from(message + '\n');
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(body.length), ...extra });
  res.end(body);
}

function refuseAndClose(req: http.IncomingMessage, res: http.ServerResponse, status: number, message: string): void {
  req.pause();
  reply(res, status, message, { connection: 'close' });
  res.once('finish', () => req.socket.destroySoon?.());
}

async function serveRequest(req: http.IncomingMessage, res: http.ServerResponse, handler: CommandHandler, options: HttpServeOptions, urlPath: string, maxBody: number): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname !== urlPath) return refuseAndClose(req, res, 404, `no frame endpoint at ${url.pathname}; POST to ${urlPath}`);
  if (req.method !== 'POST') {
    req.resume();
    return reply(res, 405, `method ${req.method} not allowed; use POST`, { allow: 'POST' });
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== FRAMES_MEDIA_TYPE) return refuseAndClose(req, res, 415, `request body must be ${FRAMES_MEDIA_TYPE}, got ${type || 'none'}`);
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBody) return refuseAndClose(req, res, 413, `request body of ${declared} bytes is over the limit of ${maxBody} bytes`);

  const reactor = new ServerReactor({ ...options, deferOutput: true });
  const write = (frames: Frame[]): Promise<void> | void => {
    if (!res.headersSent) res.writeHead(200, { 'content-type': FRAMES_MEDIA_TYPE });
    if (res.write(encodeFrames(frames))) return;
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', closed);
        resolve();
      };
      const closed = () => {
        res.off('drain', done);
        reject(new ConnectionClosedError('HTTP client went away'));
      };
      res.on('drain', done);
      res.once('close', closed);
    });
  };
  const runner = new CommandRunner(reactor, handler, write, options);
  const onClose = () => {
    if (!res.writableFinished) runner.abort(new ConnectionClosedError('HTTP client went away'));
  };
  res.once('close', onClose);

  const reader = new FrameReader(frameCodec({ maxFrameLength: options.maxFrameLength ?? 1024 * 1024 }));
  let received = 0;
  let commands = 0;
  const maxCommands = options.maxCommandsPerRequest ?? 10_000;
  const maxOutput = options.maxBufferedOutput ?? 16 * 1024 * 1024;
  let failure: { status: number; message: string } | undefined;
  /** The limits a frame may have passed: a command too many, or too much output held. */
  const overLimit = (f: Frame): { status: number; message: string } | undefined => {
    if (f.type === FRAME_TYPE_COMMAND_NAME && ++commands > maxCommands) {
      return { status: 413, message: `request has more than ${maxCommands} commands` };
    }
    if (reactor.bufferedBytes > maxOutput) return { status: 413, message: `responses held for this request are over the limit of ${maxOutput} bytes` };
    return undefined;
  };
  const it = req[Symbol.asyncIterator]();
  try {
    outer: for (;;) {
      const { value, done } = await it.next();
      if (done) break;
      const chunk = value as Uint8Array;
      received += chunk.length;
      if (received > maxBody) {
        failure = { status: 413, message: `request body is over the limit of ${maxBody} bytes` };
        break;
      }
      for (const f of reader.push(chunk)) {
        failure = overLimit(f);
        if (failure) break outer;
        const message = await runner.onFrame(f);
        if (message !== undefined) {
          failure = { status: 400, message: `protocol error: ${message}` };
          break outer;
        }
      }
    }
    if (!failure) {
      for (const f of reader.end()) {
        failure = overLimit(f);
        if (failure) break;
        const message = await runner.onFrame(f);
        if (message !== undefined) {
          failure = { status: 400, message: `protocol error: ${message}` };
          break;
        }
      }
    }
  } catch (err) {
    if (err instanceof CodecError) failure = { status: err.code === 'WK_FRAME_TOO_LARGE' ? 413 : 400, message: `malformed request body: ${err.message}` };
    else {
      runner.abort(err);
      res.destroy();
      return;
    }
  }
  if (failure) {
    runner.abort(new ConnectionClosedError(failure.message));
    return refuseAndClose(req, res, failure.status, failure.message);
  }
  runner.inputEnded();
  await runner.idle();
  if (!res.headersSent) res.writeHead(200, { 'content-type': FRAMES_MEDIA_TYPE, 'content-length': '0' });
  res.end();
}

/**
 * An HTTP server of the frame protocol (see `frameHttpListener` for the URL layout).
 *
 * ```ts
 * const server = new FrameHttpServer(async (cmd) => 'ok');
 * const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
 * const client = new FrameHttpClient(`http://127.0.0.1:${port}/frames`);
 * ```
 */
export class FrameHttpServer {
  readonly server: http.Server;

  constructor(handler: CommandHandler, options: HttpServeOptions & { requestTimeout?: number } = {}) {
    this.server = http.createServer({ requestTimeout: options.requestTimeout ?? 60_000 }, frameHttpListener(handler, options));
  }

  /** Starts listening on a TCP address (`{ host, port }`) or a Unix socket (`{ path }`); resolves with the bound address. */
  listen(address: SocketAddress): Promise<net.AddressInfo> {
    return listenOn(this.server, address) as Promise<net.AddressInfo>;
  }

  /** Stops listening and closes every connection. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
