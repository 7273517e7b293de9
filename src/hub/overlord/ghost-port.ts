/**
 * The hub's Overlord compatibility listener (Node driver over src/protocols/overlord): accepts a
 * ghost's connection, classic (raw TCP) or current (`GET /connect`, after the 101; see
 * connect.ts), reads its register and either starts an agent link (`GhostLink`) or pairs a child
 * with the session waiting for its sid.
 *
 * Ghosts cannot authenticate: the listener exists only when the operator turns it on, may be
 * limited to address ranges (`allowFrom`), and ghosts join the registry as unauthenticated
 * agents. A child's sid must match a session the hub asked that ghost for; anything else is
 * refused (`client <sid> registered without context`) and closed.
 */
import { ConnectionCap } from '../connection-cap.js';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { WirekitError } from '../../errors.js';
import { checkRegister, decodeMessage, encodeFailure, encodeSuccess, LineSplitter, Mode, type Generation, type ModeValue, type Registration, type RpcRequest } from '../../protocols/overlord/index.js';
import type { Hub } from '../hub.js';
import { GhostChild } from './child.js';
import { GhostLink } from './ghost-link.js';
import { duplexPair } from './pair.js';

export interface OverlordOptions {
  /** Address ranges (CIDR, or single addresses) ghosts may connect from. Default: any. */
  allowFrom?: readonly string[];
  /** A registered ghost silent for longer is dropped, ms. Default 20,000 (overlordd's rule). */
  keepaliveTimeoutMs?: number;
  /** Time for a new connection's register, ms. Default 60,000 (a ghost retries after its own 60 s). */
  registerTimeoutMs?: number;
  /** Time for a ghost's child to dial back, and for a file child's messages, ms. Default 10,000. */
  childTimeoutMs?: number;
  /** Longest message line, bytes. Default 1 MiB. */
  maxLine?: number;
  /** Bytes queued to a ghost that does not read before its link is dropped. Default 1 MiB. */
  maxQueuedBytes?: number;
  /** Connections before their register, at once. Default 1,024. */
  maxHandshakes?: number;
  /** Connections before their register from one address, at once. Default 64. */
  maxHandshakesPerAddress?: number;
  /** Pause before clear_to_download, ms. Default 150. */
  downloadDelayMs?: number;
  /**
   * A download a ghost started itself (`ghost.py --download FILE` in a terminal) waits this long
   * for a user's `GET /api/sessions/{sid}/file`, ms. Default 60,000.
   */
  passiveDownloadTimeoutMs?: number;
  /**
   * The ghost.py to serve at `/upgrade/ghost.py` (and its SHA-1 at `/upgrade/ghost.py.sha1`): a
   * ghost whose own SHA-1 differs downloads it, replaces itself and restarts. Without it both
   * answer 404, which ghosts take as "no upgrade". Read at each request.
   */
  ghostUpgradeFile?: string;
  /**
   * Certificate and key: a classic connection that opens with a TLS ClientHello is served over
   * TLS (1.2, as the ghosts' probes offer), one that opens in plain text as plain. Without them a
   * ClientHello is closed at once, so a ghost's TLS probe fails fast and it goes on in plain TCP.
   */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

/** A download a ghost started itself, waiting for `GET /api/sessions/{sid}/file`. */
export interface PassiveDownload {
  readonly sid: string;
  /** The ghost whose terminal started it. */
  readonly mid: string;
  readonly terminalSid: string;
  readonly filename: string;
  readonly size: number;
  readonly child: GhostChild;
}

const ports = new WeakMap<Hub, GhostPort>();

/** The hub's ghost listener, if Overlord ghosts are turned on. */
export function ghostPortOf(hub: Hub): GhostPort | undefined {
  return ports.get(hub);
}

interface Waiting {
  readonly mid: string;
  readonly mode: ModeValue;
  resolve(child: GhostChild): void;
  reject(err: Error): void;
}

export function hostOf(socket: { remoteAddress?: string | undefined }): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** Parses `allowFrom` into a BlockList (throws `WK_USAGE` on a bad range). */
export function allowList(ranges: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const r of ranges) {
    const [addr, bits] = r.split('/');
    const family = net.isIPv6(addr ?? '') ? 'ipv6' : net.isIPv4(addr ?? '') ? 'ipv4' : undefined;
    const prefix = bits === undefined ? (family === 'ipv6' ? 128 : 32) : Number(bits);
    if (!family || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 'ipv6' ? 128 : 32)) {
      throw new WirekitError('WK_USAGE', `not an address range: ${r}`, { origin: 'local' });
    }
    list.addSubnet(addr!, prefix, family);
  }
  return list;
}

export class GhostPort {
  readonly options: Required<Omit<OverlordOptions, 'allowFrom' | 'tls' | 'ghostUpgradeFile'>>;
  readonly ghostUpgradeFile: string | undefined;
  private readonly secureContext: tls.SecureContext | undefined;
  private readonly allow: net.BlockList | undefined;
  private readonly waiting = new Map<string, Waiting>();
  /** Live terminal children by sid: the ghost and the address they came from. */
  private readonly terminals = new Map<string, { mid: string; address: string }>();
  private readonly downloads = new Map<string, { d: PassiveDownload; timer: ReturnType<typeof setTimeout> }>();
  private readonly links = new Set<GhostLink>();
  private readonly cap: ConnectionCap;
  /** Every ghost socket (links and children), so close() ends them. */
  private readonly sockets = new Set<Duplex>();

  constructor(
    readonly hub: Hub,
    options: OverlordOptions = {},
  ) {
    this.secureContext = options.tls ? tls.createSecureContext({ cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' }) : undefined;
    this.allow = options.allowFrom && options.allowFrom.length > 0 ? allowList(options.allowFrom) : undefined;
    this.options = {
      keepaliveTimeoutMs: options.keepaliveTimeoutMs ?? 20_000,
      registerTimeoutMs: options.registerTimeoutMs ?? 60_000,
      childTimeoutMs: options.childTimeoutMs ?? 10_000,
      maxLine: options.maxLine ?? 1024 * 1024,
      maxQueuedBytes: options.maxQueuedBytes ?? 1024 * 1024,
      maxHandshakes: options.maxHandshakes ?? 1024,
      maxHandshakesPerAddress: options.maxHandshakesPerAddress ?? 64,
      downloadDelayMs: options.downloadDelayMs ?? 150,
      passiveDownloadTimeoutMs: options.passiveDownloadTimeoutMs ?? 60_000,
    };
    this.ghostUpgradeFile = options.ghostUpgradeFile;
    ports.set(hub, this);
    this.cap = new ConnectionCap(this.options.maxHandshakes, this.options.maxHandshakesPerAddress);
  }

  /** Whether a ghost may connect from `address`. */
  allowed(address: string): boolean {
    if (!this.allow) return true;
    return this.allow.check(address, net.isIPv6(address) ? 'ipv6' : 'ipv4');
  }

  /**
   * Serves a ghost's connection: `head`, bytes already read from it (the `upgrade` event's head
   * for /connect, which is the start of the ghost's stream). Nothing is sent before its register.
   */
  accept(socket: Duplex & { remoteAddress?: string }, generation: Generation, head?: Uint8Array): void {
    const address = hostOf(socket);
    socket.on('error', () => {});
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    if (!this.allowed(address)) {
      this.hub.logger.warn(`hub overlord: ghost connection from ${address} refused (not in --overlord-allow)`);
      socket.destroy();
      return;
    }
    const slot = this.cap.take(address);
    if ('refused' in slot) {
      this.hub.logger.warn(`hub overlord: too many ghost connections before register${slot.refused === 'address' ? ` from ${address}` : ''}; refused`);
      socket.destroy();
      return;
    }
    const uncount = slot.release;
    (socket as net.Socket).setNoDelay?.(true);
    const splitter = new LineSplitter(this.options.maxLine);
    const timer = setTimeout(() => {
      this.hub.logger.info(`hub overlord: connection from ${address} did not register in time; closed`);
      socket.destroy();
    }, this.options.registerTimeoutMs);
    const stop = () => {
      clearTimeout(timer);
      uncount();
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', stop);
    };
    const onEnd = () => {
      stop();
      socket.destroy();
    };
    let first = true;
    const onData = (chunk: Uint8Array) => {
      if (first && chunk.length > 0) {
        first = false;
        // A TLS ClientHello: served over TLS when the hub has a certificate; otherwise failed at
        // once, so a ghost's TLS probe does not wait for its timeout and it goes on without TLS.
        if (chunk[0] === 0x16) {
          stop();
          if (!this.secureContext) {
            socket.destroy();
            return;
          }
          // TLS over an in-memory pair fed with the bytes read so far (a TLSSocket on the socket
          // itself would read its handle and miss them).
          const [inner, outer] = duplexPair();
          outer.write(chunk);
          socket.pipe(outer);
          outer.pipe(socket);
          socket.once('close', () => outer.destroy());
          outer.once('close', () => socket.destroy());
          const secure = new tls.TLSSocket(inner, { isServer: true, secureContext: this.secureContext });
          Object.defineProperty(secure, 'remoteAddress', { value: address });
          secure.on('error', () => socket.destroy());
          const t = setTimeout(() => socket.destroy(), 10_000);
          secure.once('secure', () => {
            clearTimeout(t);
            this.accept(secure, generation);
          });
          return;
        }
      }
      splitter.push(chunk);
      for (let ev = splitter.next(); ev; ev = splitter.next()) {
        if ('tooLong' in ev) {
          this.hub.logger.warn(`hub overlord: ${address} sent a line over ${this.options.maxLine} bytes before registering; closed`);
          stop();
          socket.destroy();
          return;
        }
        let req: RpcRequest;
        try {
          const m = decodeMessage(generation, ev.line);
          if (m.kind !== 'request' || m.name !== 'register') continue;
          req = m;
        } catch {
          // overlordd logs and ignores what is not a message.
          this.hub.logger.debug(`hub overlord: ${address} sent a line that is not a message`);
          continue;
        }
        const check = checkRegister(req);
        if (!check.ok) {
          this.hub.logger.warn(`hub overlord: register from ${address} refused: ${check.error}`);
          if (!check.reply) continue; // no reply, as overlordd: the ghost gives up after its own timeout
          stop();
          socket.end(encodeFailure(generation, req.rid, check.error));
          return;
        }
        stop();
        socket.pause();
        this.registered(socket, splitter, generation, req.rid, check.registration, address);
        return;
      }
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', stop);
    if (head && head.length > 0) onData(head);
  }

  private registered(socket: Duplex, splitter: LineSplitter, gen: Generation, rid: string, reg: Registration, address: string): void {
    if (reg.mode === Mode.AGENT) {
      const link = new GhostLink(this, socket, splitter, gen, reg, address);
      try {
        this.hub.registerUnauthenticated(
          {
            id: reg.mid,
            hostname: typeof reg.properties.hostname === 'string' ? reg.properties.hostname : reg.mid,
            properties: { ...reg.properties, ip: address },
            address,
            version: gen === 'classic' ? 'overlord-classic' : 'overlord',
            capabilities: ['exec', 'terminal', 'upload', 'download', 'forward', 'overlord'],
          },
          link,
        );
      } catch (err) {
        const message = err instanceof WirekitError && err.code === 'WK_BUSY' ? `duplicate machine ID: ${reg.mid}` : (err as Error).message;
        this.hub.logger.warn(`hub overlord: ghost ${reg.mid} from ${address} refused: ${message}`);
        socket.end(encodeFailure(gen, rid, message));
        return;
      }
      this.links.add(link);
      socket.once('close', () => this.links.delete(link));
      socket.write(encodeSuccess(gen, rid));
      link.start();
      return;
    }
    const w = this.waiting.get(reg.sid);
    if (!w && reg.mode === Mode.FILE && [...this.terminals.values()].some((t) => t.address === address)) {
      void this.passiveDownload(socket, splitter, gen, rid, reg, address);
      return;
    }
    if (!w || w.mode !== reg.mode) {
      this.hub.logger.warn(`hub overlord: child ${reg.sid.slice(0, 64)} from ${address} registered without context; closed`);
      socket.end(encodeFailure(gen, rid, `client ${reg.sid} registered without context`));
      return;
    }
    this.waiting.delete(reg.sid);
    socket.write(encodeSuccess(gen, rid));
    if (reg.mode === Mode.TERMINAL) {
      this.terminals.set(reg.sid, { mid: w.mid, address });
      socket.once('close', () => this.terminals.delete(reg.sid));
    }
    w.resolve(new GhostChild(socket, splitter, gen, reg.sid));
  }

  /**
   * A file child nobody asked for, from the address of a live terminal child: `ghost.py --download
   * FILE` typed in an Overlord terminal. Its `request_to_download` must name that terminal's sid
   * (else it is closed); the download then belongs to the terminal's ghost (its allowlist
   * applies), is announced on `/api/monitor` as `file download` and waits for
   * `GET /api/sessions/{sid}/file`.
   */
  private async passiveDownload(socket: Duplex, splitter: LineSplitter, gen: Generation, rid: string, reg: Registration, address: string): Promise<void> {
    socket.write(encodeSuccess(gen, rid));
    const child = new GhostChild(socket, splitter, gen, reg.sid);
    let req: RpcRequest;
    try {
      req = await child.expect('request_to_download', this.options.childTimeoutMs);
    } catch {
      socket.destroy();
      return;
    }
    const p = (req.payload ?? {}) as { terminal_sid?: unknown; filename?: unknown; size?: unknown };
    const t = typeof p.terminal_sid === 'string' ? this.terminals.get(p.terminal_sid) : undefined;
    if (!t || t.address !== address || typeof p.filename !== 'string' || typeof p.size !== 'number' || !Number.isSafeInteger(p.size) || p.size < 0 || this.downloads.has(reg.sid)) {
      this.hub.logger.warn(`hub overlord: file child ${reg.sid.slice(0, 64)} from ${address} names no terminal of this hub; closed`);
      socket.destroy();
      return;
    }
    const agent = this.hub.registry.get(t.mid);
    if (!agent) {
      socket.destroy();
      return;
    }
    const d: PassiveDownload = { sid: reg.sid, mid: t.mid, terminalSid: p.terminal_sid as string, filename: p.filename, size: p.size, child };
    const timer = setTimeout(() => {
      this.downloads.delete(d.sid);
      socket.destroy();
    }, this.options.passiveDownloadTimeoutMs);
    timer.unref?.();
    this.downloads.set(d.sid, { d, timer });
    socket.once('close', () => {
      if (this.downloads.get(d.sid)?.d === d) {
        clearTimeout(timer);
        this.downloads.delete(d.sid);
      }
    });
    this.hub.logger.info(`hub overlord: ghost ${t.mid} offers ${JSON.stringify(d.filename)} (${d.size} bytes) as download ${d.sid}`);
    this.hub.emit('file download', d.sid, d.terminalSid, agent);
  }

  /** The waiting download `sid`, left in place. */
  peekDownload(sid: string): PassiveDownload | undefined {
    return this.downloads.get(sid)?.d;
  }

  /** Takes the waiting download `sid` (it can be fetched once). */
  takeDownload(sid: string): PassiveDownload | undefined {
    const e = this.downloads.get(sid);
    if (!e) return undefined;
    clearTimeout(e.timer);
    this.downloads.delete(sid);
    return e.d;
  }

  /** Waits for the child of ghost `mid` with `sid` and `mode`; rejects after the child timeout. */
  expectChild(mid: string, sid: string, mode: ModeValue, signal?: AbortSignal): { child: Promise<GhostChild>; cancel(err: Error): void } {
    let cancel!: (err: Error) => void;
    const child = new Promise<GhostChild>((resolve, reject) => {
      const timer = setTimeout(() => fail(new WirekitError('WK_TIMEOUT', `ghost ${mid} did not dial back within ${this.options.childTimeoutMs} ms`, { origin: 'remote' })), this.options.childTimeoutMs);
      const onAbort = () => fail(new WirekitError('WK_ABORTED', 'session aborted', { origin: 'local' }));
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.waiting.delete(sid);
      };
      const fail = (err: Error) => {
        done();
        reject(err);
      };
      cancel = fail;
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.set(sid, {
        mid,
        mode,
        resolve: (c) => {
          done();
          resolve(c);
        },
        reject: fail,
      });
    });
    return { child, cancel };
  }

  /** Fails every session waiting for a child of `mid` (its link ended). */
  failChildren(mid: string, err: Error): void {
    for (const w of [...this.waiting.values()]) if (w.mid === mid) w.reject(err);
  }

  close(): void {
    for (const l of this.links) l.close('hub shutting down');
    for (const w of [...this.waiting.values()]) w.reject(new WirekitError('WK_NOT_FOUND', 'hub shutting down', { origin: 'local' }));
    for (const s of this.sockets) s.destroy();
  }
}
