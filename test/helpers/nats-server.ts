/**
 * A real `nats-server` (Debian's) for the fleet tests: JetStream on, loopback, a free port, its
 * store in a temp directory. `stop()` ends it (SIGTERM, SIGKILL after 5 s); `start()` again runs it
 * on the same port and store, as a restarted server. Tests that use it skip without nats-server
 * (`skipWithout(PEERS.natsServer)`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';

async function freePort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export class NatsServer {
  private child: ChildProcess | undefined;
  log = '';

  private constructor(
    readonly port: number,
    readonly storeDir: string,
    /** The HTTP monitoring port (`-m`: /varz, /connz), when asked for. */
    readonly monitorPort?: number,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  static async start(options: { monitor?: boolean } = {}): Promise<NatsServer> {
    const s = new NatsServer(await freePort(), mkdtempSync(path.join(os.tmpdir(), 'wk-nats-')), options.monitor ? await freePort() : undefined);
    await s.start();
    return s;
  }

  /** Starts the server (again) and resolves once it accepts clients. */
  async start(timeoutMs = 15_000): Promise<void> {
    const monitor = this.monitorPort === undefined ? [] : ['-m', String(this.monitorPort)];
    const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir, ...monitor], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server did not start: ${this.log}`)), timeoutMs);
      const on = (d: Buffer) => {
        this.log += String(d);
        if (this.log.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', on);
      child.stderr!.on('data', on);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited (${code}): ${this.log}`));
      });
    });
  }

  /** The server's /varz (monitoring on): bytes and messages in and out since it started. */
  async varz(): Promise<{ in_bytes: number; out_bytes: number; in_msgs: number; out_msgs: number; mem: number }> {
    if (this.monitorPort === undefined) throw new Error('nats-server runs without monitoring (start({ monitor: true }))');
    const res = await fetch(`http://127.0.0.1:${this.monitorPort}/varz`, { signal: AbortSignal.timeout(5000) });
    return (await res.json()) as { in_bytes: number; out_bytes: number; in_msgs: number; out_msgs: number; mem: number };
  }

  /** Stops the server; `kill` sends SIGKILL at once (a crash). */
  async stop(kill = false): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill(kill ? 'SIGKILL' : 'SIGTERM');
    const force = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(force);
  }

  /** Stops it and removes the store. */
  async close(): Promise<void> {
    await this.stop(true);
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}
