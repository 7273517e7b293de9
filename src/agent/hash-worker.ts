/**
 * Worker thread body for `hash-offload.ts`: keeps one incremental hash per job id and answers
 * `digest` requests. Chunks arrive transferred, so hashing them here costs the caller nothing.
 */
import { parentPort } from 'node:worker_threads';
import { HashStateError } from './errors.js';
import { createHasher, type Hasher } from './hash-algorithms.js';
import type { HashReply, HashRequest } from './hash-offload.js';

const port = parentPort;
if (!port) throw new HashStateError('hash-worker must run in a worker thread');
const jobs = new Map<number, Hasher>();

port.on('message', (m: HashRequest) => {
  if (m.op === 'update') {
    let h = jobs.get(m.id);
    if (!h) jobs.set(m.id, (h = createHasher(m.algorithm)));
    for (const c of m.chunks) h.update(c);
    if (m.giveBack.length > 0) {
      const buffers = m.giveBack.map((i) => m.chunks[i]!.buffer as ArrayBuffer);
      port.postMessage({ op: 'recycled', id: m.id, buffers } satisfies HashReply, buffers);
    }
  } else if (m.op === 'digest') {
    const h = jobs.get(m.id) ?? createHasher(m.algorithm);
    jobs.delete(m.id);
    const digest = h.digest();
    port.postMessage({ op: 'digest', id: m.id, digest } satisfies HashReply, [digest.buffer as ArrayBuffer]);
  } else {
    jobs.delete(m.id);
  }
});
