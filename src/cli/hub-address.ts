/** Hub URLs as the CLI takes them: `tcp://host:port` or `tls://host:port` (the hub's user port). */
import { readFileSync } from 'node:fs';
import type { SocketAddress } from '../channels/connect.js';
import { UsageError } from './args.js';

export interface HubUrl {
  address: SocketAddress & { host: string; port: number };
  tls: boolean;
}

export function parseHubUrl(text: string): HubUrl {
  const m = /^(tcp|tls):\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/.exec(text);
  if (!m || Number(m[3]) > 65535) throw new UsageError(`invalid hub address ${JSON.stringify(text)} (expected tcp://HOST:PORT or tls://HOST:PORT)`);
  return { address: { host: m[2]!.replace(/^\[|\]$/g, ''), port: Number(m[3]) }, tls: m[1] === 'tls' };
}

/** The TLS option for `connectHub`: verification against `ca` (a PEM file) or the system's CAs. */
export function hubTls(url: HubUrl, ca: string | undefined): false | { ca?: Buffer } {
  if (!url.tls) return false;
  return ca ? { ca: readFileSync(ca) } : {};
}
