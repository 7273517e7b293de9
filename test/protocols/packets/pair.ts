import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { PacketConnection, type PacketConnectionOptions } from '../../../src/protocols/packets/node.js';

/** Two packet connections over a Unix socket in a fresh temporary directory (`dir`, removed by `close`). */
export interface Pair {
  a: PacketConnection;
  b: PacketConnection;
  dir: string;
  close(): Promise<void>;
}

export async function pair(optsA: PacketConnectionOptions = {}, optsB: PacketConnectionOptions = optsA): Promise<Pair> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-packets-'));
  const sock = path.join(dir, 's.sock');
  const server = net.createServer();
  server.listen(sock);
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = net.connect(sock);
  await once(client, 'connect');
  const [srv] = (await accepted) as [net.Socket];
  server.close();
  const a = new PacketConnection(client, optsA);
  const b = new PacketConnection(srv, optsB);
  return {
    a,
    b,
    dir,
    close: async () => {
      client.destroy();
      srv.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

