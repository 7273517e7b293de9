/** Spawns test/peers/mux-frames/hgpeer.py (Mercurial's wireprotoframing) and talks JSON lines to it. */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PYTHON = '/usr/bin/python3';

function findScript(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const p = join(dir, 'test', 'peers', 'mux-frames', 'hgpeer.py');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new Error('hgpeer.py not found');
}

/** Why Mercurial cannot be used here, or undefined when it can. */
export function hgUnavailable(): string | undefined {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  const r = spawnSync(PYTHON, ['-c', 'import mercurial.wireprotoframing'], { timeout: 10_000 });
  return r.status === 0 ? undefined : 'needs Mercurial (apt-get install mercurial)';
}

export type Reply = Record<string, any>;

export class HgPeer {
  private readonly child: ChildProcessWithoutNullStreams;
  private buf = '';
  private waiters: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];

  constructor() {
    this.child = spawn(PYTHON, [findScript()], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (d: string) => {
      this.buf += d;
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        this.waiters.shift()?.resolve(JSON.parse(line) as Reply);
      }
    });
    let err = '';
    this.child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    this.child.on('exit', () => {
      for (const w of this.waiters.splice(0)) w.reject(new Error(`hgpeer exited: ${err}`));
    });
  }

  /** Sends one command; rejects on a Python exception or after 10 s. */
  call(cmd: Reply): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`hgpeer timed out on ${cmd.op}`)), 10_000);
      this.waiters.push({
        resolve: (r) => {
          clearTimeout(timer);
          if (r.ok) resolve(r);
          else reject(new Error(`hgpeer ${cmd.op}: ${r.error}`));
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.stdin.write(JSON.stringify(cmd) + '\n');
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.stdin.end();
      setTimeout(() => this.child.kill(), 2000).unref();
    });
  }
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
