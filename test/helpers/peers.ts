/**
 * Which peer runtimes (Ruby, Python's dill, Mercurial, Chromium, nats-server) this machine has, and
 * the `skip` option that goes with each: on a machine without the runtime the test is skipped with a
 * one-line notice that names what to install; under CI (`CI` set, as `.ci/run` runs) a missing
 * runtime is never a skip, so the test runs and fails.
 */
import { spawnSync } from 'node:child_process';

export interface Peer {
  /** What the tests need, as the notice names it. */
  readonly name: string;
  /** How to get it on Debian. */
  readonly install: string;
  /** A command that exits 0 when the runtime is there. */
  readonly probe: readonly [string, ...string[]];
}

export const PEERS = {
  ruby: { name: 'Ruby', install: 'apt-get install ruby', probe: ['ruby', '-e', 'exit 0'] },
  dill: { name: "Python's dill", install: 'apt-get install python3-dill', probe: ['/usr/bin/python3', '-c', 'import dill'] },
  python: { name: 'Python 3', install: 'apt-get install python3', probe: ['/usr/bin/python3', '-c', 'pass'] },
  mercurial: { name: 'Mercurial', install: 'apt-get install mercurial', probe: ['/usr/bin/python3', '-c', 'import mercurial'] },
  chromium: { name: 'Chromium', install: 'apt-get install chromium', probe: ['chromium', '--version'] },
  natsServer: { name: 'nats-server', install: 'apt-get install nats-server', probe: ['nats-server', '--version'] },
} as const satisfies Record<string, Peer>;

const seen = new Map<Peer, boolean>();

/** Whether `peer` runs here (probed once per process). */
export function havePeer(peer: Peer): boolean {
  let ok = seen.get(peer);
  if (ok === undefined) {
    const [cmd, ...args] = peer.probe;
    ok = spawnSync(cmd, args, { stdio: 'ignore', timeout: 20_000 }).status === 0;
    seen.set(peer, ok);
  }
  return ok;
}

/**
 * The `skip` option of a test that needs `peers`: `false` when they are all there or under CI,
 * otherwise the notice (node:test prints it as `# SKIP <notice>`).
 */
export function skipWithout(...peers: Peer[]): false | string {
  const missing = peers.filter((p) => !havePeer(p));
  if (missing.length === 0 || process.env.CI) return false;
  return `needs ${missing.map((p) => p.name).join(' and ')} (${missing.map((p) => p.install).join('; ')})`;
}
