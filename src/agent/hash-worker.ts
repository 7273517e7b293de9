/**
 * Worker thread body for `hash-offload.ts`: keeps one incremental hash per job id and answers
 * `digest` requests. Chunks arrive transferred, so hashing them here costs the caller nothing.
 */
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { HashStateError } from './errors.js';
import type { HashReply, HashRequest } from './hash-offload.js';

const port = parentPort;
if (!port) throw new HashStateError('hash-worker must run in a worker thread');
const jobs = new Map<number, Hash>();

port.on('message', (m: HashRequest) => {
  if (m.op === 'update') {
    let h = jobs.get(m.id);
    if (!h) jobs.set(m.id, (h = createHash(m.algorithm)));
    for (const c of m.chunks) h.update(c);
    if (m.giveBack.length > 0) {
      const buffers = m.giveBack.map((i) => m.chunks[i]!.buffer as ArrayBuffer);
      port.postMessage({ op: 'recycled', id: m.id, buffers } satisfies HashReply, buffers);
    }
  } else if (m.op === 'digest') {
    const h = jobs.get(m.id) ?? createHash(m.algorithm);
    jobs.delete(m.id);
    const digest = new Uint8Array(h.digest());
    port.postMessage({ op: 'digest', id: m.id, digest } satisfies HashReply, [digest.buffer]);
  } else {
    jobs.delete(m.id);
  }
});
