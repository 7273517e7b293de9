/**
 * Overlord's LAN discovery broadcast (off unless the operator turns it on): the announcement of
 * src/protocols/overlord/lan.ts sent to `target` (Overlord's 255.255.255.255:4456, a subnet's
 * broadcast address, or any address) at once and then every `intervalMs`.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { Logger } from '../../agent/log.js';
import { encodeLanAnnouncement, LAN_DISCOVERY_INTERVAL_MS } from '../../protocols/overlord/lan.js';

export interface LanDiscoveryOptions {
  /** Where to send (IPv4): Overlord's default is 255.255.255.255:4456. */
  host: string;
  port: number;
  /** The address announced; empty (Overlord's default) means "the packet's source". */
  ip?: string;
  /** Default 5,000 ms, as Overlord. */
  intervalMs?: number;
}

export class LanAnnouncer {
  private readonly socket = dgram.createSocket('udp4');
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly options: LanDiscoveryOptions,
    private readonly announcedPort: number,
    private readonly logger: Logger,
  ) {
    this.socket.on('error', (err) => this.logger.warn(`hub overlord: LAN discovery: ${err.message}`));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind(0, () => {
        this.socket.off('error', reject);
        resolve();
      });
    });
    this.socket.setBroadcast(true);
    const msg = encodeLanAnnouncement(this.options.ip ?? '', this.announcedPort);
    const send = () => this.socket.send(msg, this.options.port, this.options.host, (err) => err && this.logger.debug(`hub overlord: LAN discovery send: ${err.message}`));
    send();
    this.timer = setInterval(send, this.options.intervalMs ?? LAN_DISCOVERY_INTERVAL_MS);
    this.timer.unref?.();
    this.logger.info(`hub overlord: LAN discovery: announcing port ${this.announcedPort} to ${this.options.host}:${this.options.port}`);
  }

  close(): void {
    clearInterval(this.timer);
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }
}

/** Checks a LAN discovery target (IPv4 only, as Overlord). */
export function isLanTarget(host: string): boolean {
  return net.isIPv4(host);
}
