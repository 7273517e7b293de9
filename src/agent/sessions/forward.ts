/**
 * Forward sessions: a TCP connection made by the daemon to `host:port`, carried as DATA frames
 * both ways, EOF as a half-close. Daemon half (`forwardKind`): options, the target connected
 * before the reply (`{}`), then the copy. Client half (`clientForward`): a local Duplex.
 */
import type net from 'node:net';
import { Duplex } from 'node:stream';
import { connectSocket } from '../../channels/connect.js';
import { RemoteCommandError } from '../../protocols/control/errors.js';
import type { FrameStream } from '../frame-stream.js';
import type { Logger } from '../log.js';
import { encodeError, FrameType } from '../session-frames.js';
import type { ClientContext, SessionKind } from './context.js';
import { runClientSession, writeWithBackpressure } from './frames.js';
import { badOptions } from './options.js';
import { grace } from './process.js';

/** Options of a forward session. */
export interface ForwardOptions {
  host: string;
  port: number;
}

/** Checks the `opts` of a forward request (`host` defaults to localhost). */
export function parseForwardOptions(o: Record<string, unknown>): ForwardOptions {
  const host = o.host ?? 'localhost';
  const port = o.port;
  if (typeof host !== 'string' || typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw badOptions('forward needs {"host": string, "port": 1..65535}');
  }
  return { host, port };
}

/**
 * Connects to the forward target; resolves once connected (so failures are refused before the
 * switch). Rejects with `ConnectError` (`WK_CONNECT`) or `TimeoutError` (`WK_TIMEOUT`).
 */
export function connectTarget(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return connectSocket({ host, port }, { timeout: timeoutMs, noDelay: false });
}

/**
 * Runs a forward session: DATA frames go to the target, the target's bytes come back as DATA;
 * EOF in either direction half-closes the other side. Ends when both directions have ended, when
 * the client goes away, or when the target connection closes (a reset or error is sent as an
 * ERROR frame, the last one): the daemon then ends its side and gives the client a moment to read
 * what is still on its way before the stream is closed.
 */
export async function runForward(fs: FrameStream, target: net.Socket, log: Logger): Promise<void> {
  let targetEnded = false;
  target.on('data', (d: Uint8Array) => {
    if (!fs.send(FrameType.DATA, d)) {
      target.pause();
      fs.drained().then(
        () => target.resume(),
        () => target.resume(),
      );
    }
  });
  target.on('end', () => {
    targetEnded = true;
    fs.send(FrameType.EOF);
  });
  target.on('error', (err) => {
    log.debug(`forward target: ${err.message}`);
    fs.send(FrameType.ERROR, encodeError('WK_CONNECT', `target connection failed: ${err.message}`));
  });
  const targetClosed = new Promise<'target'>((resolve) => target.once('close', () => resolve('target')));
  let clientEof = false;
  const clientDone = fs
    .run(async (f) => {
      if (f.type === FrameType.DATA) await writeWithBackpressure(target, f.payload);
      else if (f.type === FrameType.EOF) {
        clientEof = true;
        target.end();
      } else throw badOptions(`unexpected frame type ${f.type} in a forward session`);
    })
    .catch((err: unknown) => log.debug(`forward session: ${(err as Error).message}`))
    .then(() => 'client' as const);
  const first = await Promise.race([clientDone, targetClosed]);
  if (first === 'target') {
    // The target is gone (both directions ended, or reset): nothing more can pass.
    if (!targetEnded && !target.errored) fs.send(FrameType.EOF);
    fs.end();
    await Promise.race([clientDone, grace(2000)]);
  } else if (clientEof && !targetEnded) {
    // The client ended its side after EOF; wait for the target to finish.
    await Promise.race([targetClosed, grace(2000)]);
  }
  target.destroy();
  fs.close();
}

/** Daemon half of the `forward` command. */
export const forwardKind: SessionKind<ForwardOptions, { options: ForwardOptions; target: net.Socket }> = {
  cmd: 'forward',
  parse: (opts) => parseForwardOptions(opts),
  async prepare(options, ctx) {
    return { options, target: await connectTarget(options.host, options.port, ctx.connectTimeoutMs) };
  },
  reply: () => ({}),
  run({ options, target }, io, ctx) {
    ctx.log.info(`forward to ${options.host}:${options.port}`);
    return runForward(ctx.frames(io), target, ctx.log);
  },
};

/**
 * Client half: opens a forward session to `host:port` as seen from the daemon. Returns a duplex
 * stream: what is written reaches the target, `end()` half-closes towards it; its readable side
 * ends when the target half-closes.
 */
export async function clientForward(client: ClientContext, host: string, port: number): Promise<Duplex> {
  const { stream } = await client.open('forward', { host, port });
  const fs = client.frames(stream);
  let readEnded = false;
  let writeEnded = false;
  const maybeClose = () => {
    if (readEnded && writeEnded) fs.close();
  };
  let resumeReader: (() => void) | undefined;
  const duplex = new Duplex({
    allowHalfOpen: true,
    read() {
      const r = resumeReader;
      resumeReader = undefined;
      r?.();
    },
    write(chunk: Buffer, _enc, cb) {
      if (fs.send(FrameType.DATA, chunk)) cb();
      else fs.drained().then(() => cb(), cb);
    },
    final(cb) {
      fs.send(FrameType.EOF);
      writeEnded = true;
      maybeClose();
      cb();
    },
    destroy(err, cb) {
      fs.close();
      cb(err);
    },
  });
  runClientSession('forward', fs, async (f) => {
    if (f.type === FrameType.DATA) {
      if (!duplex.push(f.payload)) await new Promise<void>((r) => (resumeReader = r));
      return true;
    }
    if (f.type === FrameType.EOF) {
      duplex.push(null);
      readEnded = true;
      maybeClose();
      return true;
    }
    return false;
  }).then(
    () => {
      if (!readEnded) duplex.push(null);
    },
    // The daemon ending the stream after the target's EOF is the session's normal end; an ERROR
    // frame (the target reset) or a lost connection fails the duplex.
    (err) => duplex.destroy(readEnded && !(err instanceof RemoteCommandError) ? undefined : (err as Error)),
  );
  return duplex;
}
