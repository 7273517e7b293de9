/**
 * The agent daemon's session kinds (docs/agent.md) served by the hub for an Overlord ghost: each
 * wirekit session is translated to the ghost's own kind. The hub asks the ghost for a child
 * (`terminal`, `shell`, `file_download`, `file_upload`, `forward`), the child dials back and is
 * paired by its sid, then session frames (or the transfer stream) on the wirekit side become raw
 * bytes and in-band controls on the ghost side:
 *
 * | wirekit   | ghost              | translation                                                    |
 * |-----------|--------------------|----------------------------------------------------------------|
 * | exec      | shell (mode 3)     | argv quoted for `sh -c`; stdout and stderr arrive merged (STDOUT); stdin EOF = classic marker / current half-close; the exit code from a trailer the command prints |
 * | terminal  | terminal (mode 2)  | RESIZE = classic 0x80 {json} 0x81 / current ESC [ 8 ; r ; c t; the ghost runs its own shell |
 * | forward   | forward (mode 6)   | DATA both ways; classic ghosts reach localhost only            |
 * | download  | file_download (5)  | request_to_download (size) → clear_to_download → raw bytes; the hub adds the SHA-256 |
 * | upload    | file_upload (5)    | clear_to_upload → raw bytes; the hub checks the SHA-256 (the ghost has written the file by then) |
 */
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { WirekitError } from '../../errors.js';
import { utf8Encode } from '../../bytes/text.js';
import { concatBytes } from '../../bytes/text.js';
import type { AnySessionKind } from '../../agent/sessions/context.js';
import { decodeResize, encodeExit, FrameType } from '../../agent/session-frames.js';
import { transferReplies } from '../../agent/sessions/replies.js';
import { DIGEST_SIZE } from '../../agent/transfer.js';
import { ClassicInputFilter, ClassicTerminalEncoder, encodeCurrentResize, encodeRequest, encodeStdinClosed, Mode, NO_REPLY, type Generation, type ModeValue } from '../../protocols/overlord/index.js';
import type { GhostChild } from './child.js';

/** What the session kinds need of a ghost's link. */
export interface GhostSessionHost {
  readonly generation: Generation;
  /** Sends request `name` (its payload gets the new child's `sid`), awaits the reply and the child's dial-back. */
  openChild(name: string, payload: Record<string, unknown>, mode: ModeValue): Promise<GhostChild>;
  /** Time allowed for a file child's messages, ms. */
  readonly messageTimeoutMs: number;
  /** Pause between a download's request_to_download reply and clear_to_download, ms (ghost.py reads one message per read). */
  readonly downloadDelayMs: number;
}

/** An Overlord ghost cannot do what the client asked (a terminal's argv, a classic forward elsewhere than localhost). Code `WK_USAGE`. */
export class GhostUnsupportedError extends WirekitError {
  constructor(message: string) {
    super('WK_USAGE', message, { origin: 'remote' });
  }
}

const bad = (message: string) => new WirekitError('WK_PROTOCOL', message, { origin: 'remote' });

/** `'a b'` → `'a b'` quoted for sh. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/u.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const strings = (v: unknown, what: string): string[] => {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad(`${what} must be an array of strings`);
  return v as string[];
};

/** Copies `from` into frames of `type` with backpressure, first `leftover`. Resolves at its end. */
function pumpToFrames(from: Duplex, leftover: Uint8Array, send: (d: Uint8Array) => boolean, drained: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const push = (d: Uint8Array) => {
      if (d.length > 0 && !send(d)) {
        from.pause();
        drained().then(
          () => from.resume(),
          () => from.destroy(),
        );
      }
    };
    push(leftover);
    // The ghost may have gone between the pairing and now.
    if (from.destroyed || from.readableEnded) return resolve();
    from.on('data', push);
    from.once('end', () => resolve());
    from.once('close', () => resolve());
    from.resume();
  });
}

function writeTo(socket: Duplex, data: Uint8Array): Promise<void> {
  if (socket.destroyed || socket.writableEnded) return Promise.resolve();
  if (socket.write(data)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/**
 * Takes the exit-status trailer the command prints (`\x1eWKX<nonce>:<code>\x1e`) out of a shell's
 * output wherever it is: a ghost may pass on output that follows it (a background job, or a ghost
 * that reads stdout and stderr apart, as classic ghost.py does). Only what may be the start of the
 * trailer is held back.
 */
class ExitTrailer {
  private held = '';
  private readonly prefix: string;
  private found: number | null = null;
  constructor(nonce: string) {
    this.prefix = `\x1eWKX${nonce}:`;
  }
  /** The longest trailer: prefix, 3 digits, 0x1e. */
  get keep(): number {
    return this.prefix.length + 4;
  }
  push(d: Uint8Array): Uint8Array {
    if (this.found !== null && this.held === '') return d;
    // latin1 maps each byte to one code unit, so indexes are byte offsets.
    let text = this.held + Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('latin1');
    this.held = '';
    if (this.found === null) {
      const at = text.indexOf(this.prefix);
      if (at >= 0) {
        // eslint-disable-next-line no-control-regex -- the trailer ends in 0x1e
        const m = /^(\d{1,3})\x1e/u.exec(text.slice(at + this.prefix.length, at + this.keep));
        if (m) {
          this.found = Number(m[1]);
          text = text.slice(0, at) + text.slice(at + this.prefix.length + m[0].length);
        } else if (text.length - at < this.keep) {
          this.held = text.slice(at);
          text = text.slice(0, at);
        }
      } else {
        // Hold back a tail that may be the start of the prefix.
        for (let n = Math.min(this.prefix.length - 1, text.length); n > 0; n--) {
          if (this.prefix.startsWith(text.slice(text.length - n))) {
            this.held = text.slice(text.length - n);
            text = text.slice(0, text.length - n);
            break;
          }
        }
      }
    }
    return Buffer.from(text, 'latin1');
  }
  end(): { data: Uint8Array; code: number | null } {
    const data = Buffer.from(this.held, 'latin1');
    this.held = '';
    return { data, code: this.found };
  }
}

export function ghostSessionKinds(host: GhostSessionHost): AnySessionKind[] {
  const gen = host.generation;

  const exec: AnySessionKind = {
    cmd: 'exec',
    parse(o) {
      const argv = strings(o.argv, 'argv');
      if (argv.length === 0) throw bad('argv must not be empty');
      const env = o.env === undefined ? {} : (o.env as Record<string, unknown>);
      if (typeof env !== 'object' || env === null || !Object.values(env).every((v) => typeof v === 'string')) throw bad('env must map names to strings');
      for (const k of Object.keys(env)) if (!/^[A-Za-z_][A-Za-z0-9_]*$/u.test(k)) throw bad(`bad environment variable name ${JSON.stringify(k)}`);
      if (o.cwd !== undefined && typeof o.cwd !== 'string') throw bad('cwd must be a string');
      const nonce = randomBytes(6).toString('hex');
      // stderr joins stdout in the shell itself: a ghost that reads them apart (classic ghost.py)
      // would otherwise reorder them, and the trailer would not be the last output. Only the
      // command's stderr: the shell's own stays open to its end (classic ghost.py stops reading
      // a shell whose stderr is closed and has exited, and output still in the pipe is lost).
      let command = '{ ' + Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v as string)}; `).join('');
      if (typeof o.cwd === 'string') command += `cd ${shellQuote(o.cwd)} && `;
      command += argv.map(shellQuote).join(' ');
      // The ghost's shell child carries no exit status: the command prints it after itself.
      // ghost.py stops reading once the shell has exited, and what is still in the pipe is lost:
      // the shell stays a moment after the trailer, so the ghost reads it first (a busybox sleep
      // without fractions waits 1 s).
      command += `\n} 2>&1\nprintf '\\036WKX${nonce}:%d\\036' "$?"\nsleep 0.1 2>/dev/null || sleep 1`;
      return { command, nonce };
    },
    async prepare(opts: { command: string; nonce: string }) {
      return { child: await host.openChild('shell', { command: opts.command }, Mode.SHELL), nonce: opts.nonce };
    },
    reply: () => ({ pid: null }),
    async run({ child, nonce }: { child: GhostChild; nonce: string }, io, ctx) {
      const fs = ctx.frames(io);
      const { socket, leftover } = child.raw();
      const trailer = new ExitTrailer(nonce);
      const output = pumpToFrames(socket, new Uint8Array(0), (d) => fs.send(FrameType.STDOUT, trailer.push(d)), () => fs.drained());
      if (leftover.length) fs.send(FrameType.STDOUT, trailer.push(leftover));
      let sentInput = false;
      const input = fs
        .run(async (f) => {
          if (f.type === FrameType.DATA) {
            sentInput ||= f.payload.length > 0;
            await writeTo(socket, f.payload);
          } else if (f.type === FrameType.EOF) {
            // Classic ghost.py under Python 3 (all of scripts/ghost.py) fails on any byte it reads
            // from a shell's socket (it looks for the marker, a str, in bytes) and kills the
            // command: with no stdin at all, the marker is not sent, so such commands run whole.
            if (gen === 'classic') {
              if (sentInput) socket.write(encodeStdinClosed());
            } else socket.end();
          }
          // SIGNAL: an Overlord shell cannot be signalled; ignored.
        })
        .catch(() => {});
      await Promise.race([output, input.then(() => 'client-gone' as const)]).then(async (why) => {
        if (why === 'client-gone') return;
        const { data, code } = trailer.end();
        if (data.length) fs.send(FrameType.STDOUT, data);
        await fs.write(FrameType.EXIT, encodeExit({ code, signal: null }));
        fs.end();
      });
      socket.destroy();
      await Promise.race([input, new Promise((r) => setTimeout(r, 2000).unref())]);
      fs.close();
    },
  };

  const terminal: AnySessionKind = {
    cmd: 'terminal',
    parse(o) {
      if (o.argv !== undefined) throw new GhostUnsupportedError('an Overlord ghost runs its own shell in a terminal; argv is not supported');
      const num = (v: unknown, d: number) => (typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 65536 ? v : d);
      return { cols: num(o.cols, 80), rows: num(o.rows, 24) };
    },
    async prepare(opts: { cols: number; rows: number }) {
      const payload: Record<string, unknown> = { tty_device: null };
      if (gen === 'current') Object.assign(payload, { cols: opts.cols, rows: opts.rows });
      return { child: await host.openChild('terminal', payload, Mode.TERMINAL), ...opts };
    },
    // The ghost's sid of the terminal: the hub's tty tells Overlord's dashboard (its uploads and
    // `ghost.py --download` name the terminal by it).
    reply: (p: { child: GhostChild }) => ({ sid: p.child.sid }),
    async run({ child, cols, rows }: { child: GhostChild; cols: number; rows: number }, io, ctx) {
      const fs = ctx.frames(io);
      const { socket, leftover } = child.raw();
      const enc = new ClassicTerminalEncoder();
      const filter = new ClassicInputFilter();
      const resize = (r: number, c: number) => (gen === 'classic' ? enc.resize(r, c) : encodeCurrentResize(r, c));
      socket.write(resize(rows, cols));
      const output = pumpToFrames(socket, leftover, (d) => fs.send(FrameType.DATA, d), () => fs.drained());
      const input = fs
        .run(async (f) => {
          if (f.type === FrameType.DATA) await writeTo(socket, gen === 'classic' ? enc.data(filter.push(f.payload)) : f.payload);
          else if (f.type === FrameType.RESIZE) {
            const { cols: c, rows: r } = decodeResize(f.payload);
            const b = resize(r, c);
            if (b.length) socket.write(b);
          }
        })
        .catch(() => {});
      const why = await Promise.race([output.then(() => 'ghost-done' as const), input.then(() => 'client-gone' as const)]);
      if (why === 'ghost-done') {
        // An Overlord terminal has no exit status; a terminal the ghost ended is reported as 0.
        await fs.write(FrameType.EXIT, encodeExit({ code: 0, signal: null }));
        fs.end();
      }
      socket.destroy();
      await Promise.race([input, new Promise((r) => setTimeout(r, 2000).unref())]);
      fs.close();
    },
  };

  const forward: AnySessionKind = {
    cmd: 'forward',
    parse(o) {
      const host0 = o.host ?? 'localhost';
      const port = o.port;
      if (typeof host0 !== 'string' || typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw bad('forward needs {"host": string, "port": 1..65535}');
      const local = host0 === 'localhost' || host0 === '127.0.0.1';
      if (gen === 'classic' && !local) throw new GhostUnsupportedError('a classic Overlord ghost forwards to localhost only');
      return { host: host0, port };
    },
    async prepare(opts: { host: string; port: number }) {
      const payload: Record<string, unknown> = { port: opts.port };
      if (gen === 'current') payload.host = opts.host === 'localhost' ? '127.0.0.1' : opts.host;
      return { child: await host.openChild('forward', payload, Mode.FORWARD) };
    },
    reply: () => ({}),
    async run({ child }: { child: GhostChild }, io, ctx) {
      const fs = ctx.frames(io);
      const { socket, leftover } = child.raw();
      const output = pumpToFrames(socket, leftover, (d) => fs.send(FrameType.DATA, d), () => fs.drained()).then(() => {
        fs.send(FrameType.EOF);
      });
      let clientEof = false;
      const input = fs
        .run(async (f) => {
          if (f.type === FrameType.DATA) await writeTo(socket, f.payload);
          else if (f.type === FrameType.EOF) {
            clientEof = true;
            socket.end();
          }
        })
        .catch(() => {});
      await Promise.race([Promise.all([output, input]), input.then(() => (clientEof ? output : undefined))]);
      socket.destroy();
      fs.close();
    },
  };

  const download: AnySessionKind = {
    cmd: 'download',
    parse(o) {
      if (typeof o.path !== 'string' || o.path === '') throw bad('download needs {"path": string}');
      return { path: o.path };
    },
    async prepare(opts: { path: string }) {
      const child = await host.openChild('file_download', { filename: opts.path }, Mode.FILE);
      try {
        const req = await child.expect('request_to_download', host.messageTimeoutMs);
        const size = (req.payload as { size?: unknown } | null)?.size;
        if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad('the ghost sent request_to_download without a size');
        return { child, size, path: opts.path };
      } catch (err) {
        child.socket.destroy();
        throw err;
      }
    },
    reply: (p: { path: string; size: number }) => ({ path: p.path, size: p.size, mode: 0o644 }),
    async run({ child, size }: { child: GhostChild; size: number }, io) {
      // ghost.py reads one message per read: keep clear_to_download out of the reply's read.
      await new Promise((r) => setTimeout(r, host.downloadDelayMs));
      const { socket, leftover } = child.raw();
      socket.write(encodeRequest(gen, randomBytes(16).toString('hex'), 'clear_to_download', null, NO_REPLY));
      const hash = createHash('sha256');
      let got = 0;
      const take = async (d: Uint8Array): Promise<boolean> => {
        const part = d.subarray(0, Math.min(d.length, size - got));
        got += part.length;
        hash.update(part);
        await writeTo(io, part);
        return got >= size;
      };
      let done = size === 0 || (leftover.length > 0 && (await take(leftover)));
      if (!done) {
        done = await new Promise<boolean>((resolve) => {
          socket.on('data', (d: Uint8Array) => {
            socket.pause();
            void take(d).then((full) => (full ? resolve(true) : socket.resume()));
          });
          socket.once('end', () => resolve(got >= size));
          socket.once('close', () => resolve(got >= size));
          io.once('close', () => resolve(false));
          socket.resume();
        });
      }
      socket.destroy();
      if (!done) return void io.destroy();
      io.end(hash.digest());
    },
  };

  const upload: AnySessionKind = {
    cmd: 'upload',
    parse(o) {
      if (typeof o.path !== 'string' || o.path === '') throw bad('upload needs {"path": string, "size": integer}');
      const size = o.size;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad('upload needs a non-negative integer size');
      const mode = typeof o.mode === 'number' && Number.isInteger(o.mode) ? o.mode & 0o7777 : 0;
      const terminal = typeof o.terminal === 'string' && o.terminal !== '' ? o.terminal : undefined;
      return { path: o.path, size, mode, terminal };
    },
    async prepare(opts: { path: string; size: number; mode: number; terminal: string | undefined }) {
      // With a terminal (the ghost's terminal sid), a bare file name goes without dest: the ghost
      // then puts it in that terminal shell's current directory. Any other path is the ghost's
      // dest (a relative one from its $HOME, as Overlord's ghost takes it).
      const bare = opts.terminal !== undefined && !opts.path.includes('/') && !opts.path.startsWith('~');
      const payload: Record<string, unknown> = { terminal_sid: opts.terminal ?? null, filename: path.posix.basename(opts.path), dest: bare ? '' : opts.path, perm: opts.mode };
      if (gen === 'classic') payload.check_only = false;
      const child = await host.openChild('file_upload', payload, Mode.FILE);
      try {
        await child.expect('clear_to_upload', host.messageTimeoutMs);
      } catch (err) {
        child.socket.destroy();
        throw err;
      }
      return { child, ...opts };
    },
    reply: (p: { path: string }) => ({ path: p.path }),
    async run({ child, size, path: dest }: { child: GhostChild; size: number; path: string }, io) {
      const replies = transferReplies(io);
      const { socket } = child.raw();
      socket.resume(); // nothing more is expected from the ghost on an upload
      socket.on('data', () => {});
      const hash = createHash('sha256');
      let got = 0;
      const trailer: Uint8Array[] = [];
      let trailerLen = 0;
      const ok = await new Promise<boolean>((resolve) => {
        io.on('data', (d: Uint8Array) => {
          const part = d.subarray(0, Math.max(0, Math.min(d.length, size - got)));
          if (part.length) {
            got += part.length;
            hash.update(part);
            if (!socket.write(part)) {
              io.pause();
              socket.once('drain', () => io.resume());
            }
          }
          const rest = d.subarray(part.length);
          if (rest.length) {
            trailer.push(rest);
            trailerLen += rest.length;
          }
          if (trailerLen >= DIGEST_SIZE) resolve(true);
        });
        io.once('end', () => resolve(trailerLen >= DIGEST_SIZE));
        io.once('close', () => resolve(trailerLen >= DIGEST_SIZE));
        socket.once('close', () => resolve(false));
      });
      const digest = hash.digest();
      if (!ok) {
        socket.destroy();
        io.destroy();
        return;
      }
      const sent = concatBytes(trailer).subarray(0, DIGEST_SIZE);
      // The hub closes the child at the end: that is how a ghost knows the file is complete.
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.end();
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 5000).unref();
      });
      if (Buffer.compare(Buffer.from(sent), digest) !== 0) {
        await replies.fail(new WirekitError('WK_CHECKSUM', `SHA-256 mismatch for ${dest} (the ghost has written the file already)`, { origin: 'remote' }));
      } else {
        await replies.ok({ path: dest, size, sha256: digest.toString('hex') });
      }
      io.end();
    },
  };

  return [exec, terminal, forward, download, upload];
}

export const __test = { ExitTrailer, utf8Encode };
