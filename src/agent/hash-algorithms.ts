/**
 * The integrity hashes a file transfer can use, and their negotiation. SHA-256 comes with Node;
 * BLAKE3 (about 4x faster here) comes from the optional native module `@napi-rs/blake-hash`,
 * loaded lazily on first use: a machine without it (an install that skipped optional
 * dependencies, a platform without a prebuilt binary) still works and speaks SHA-256 only.
 *
 * Negotiation: the side that asks (the client, in its `upload` or `download` request) offers the
 * names it can use in its order of preference (`"hashes": ["blake3", "sha256"]`); the daemon picks
 * the first it can use and names it in its reply (`"hash": "blake3"`). A request without the
 * field, or a reply without it (a peer from before BLAKE3), means SHA-256. Both digests are 32
 * bytes, so the transfer stream's layout is the same for both.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { WirekitError } from '../errors.js';

/** A hash a transfer can use. */
export type HashName = 'sha256' | 'blake3';

/** Every hash this code knows, fastest first (the default order of an offer). */
export const HASH_NAMES: readonly HashName[] = ['blake3', 'sha256'];

/** How users know the hash. */
export const HASH_LABELS: Readonly<Record<HashName, string>> = { sha256: 'SHA-256', blake3: 'BLAKE3' };

/** An incremental hash with a 32-byte digest. */
export interface Hasher {
  update(data: Uint8Array): unknown;
  digest(): Uint8Array;
}

interface Blake3Module {
  Blake3Hasher: new () => { update(input: Uint8Array): unknown; digestBuffer(): Uint8Array };
}

let blake3: Blake3Module | null | undefined;

/** The BLAKE3 module, or null when it cannot be loaded (tried once per process). */
function loadBlake3(): Blake3Module | null {
  if (blake3 !== undefined) return blake3;
  try {
    const m = createRequire(import.meta.url)('@napi-rs/blake-hash') as Partial<Blake3Module> | undefined;
    blake3 = typeof m?.Blake3Hasher === 'function' ? (m as Blake3Module) : null;
  } catch {
    blake3 = null;
  }
  return blake3;
}

/** True when this process can compute `name`. */
export function hashAvailable(name: HashName): boolean {
  return name === 'sha256' || loadBlake3() !== null;
}

/** The hashes this process can compute, fastest first. */
export function availableHashes(): HashName[] {
  return HASH_NAMES.filter(hashAvailable);
}

/** True when `v` names a known hash. */
export function isHashName(v: unknown): v is HashName {
  return typeof v === 'string' && (HASH_NAMES as readonly string[]).includes(v);
}

/** A new incremental hash (throws `WK_HASH_UNSUPPORTED` when `name` is not available here). */
export function createHasher(name: HashName): Hasher {
  if (name === 'sha256') {
    const h = createHash('sha256');
    return { update: (d) => h.update(d), digest: () => new Uint8Array(h.digest()) };
  }
  const m = loadBlake3();
  if (!m) throw new WirekitError('WK_HASH_UNSUPPORTED', 'BLAKE3 is not available here (the optional module @napi-rs/blake-hash is not installed)', { origin: 'local' });
  const h = new m.Blake3Hasher();
  return { update: (d) => h.update(d), digest: () => new Uint8Array(h.digestBuffer()) };
}

/**
 * The daemon's choice from a client's offer (`hashes` in the request): the first name it can
 * compute. No offer (an older client) means SHA-256. An offer of nothing it can compute is
 * refused with `WK_HASH_UNSUPPORTED`.
 */
export function chooseHash(offer: unknown): HashName {
  if (offer === undefined || offer === null) return 'sha256';
  if (!Array.isArray(offer)) throw new WirekitError('WK_PROTOCOL', '"hashes" must be an array of hash names', { origin: 'remote' });
  for (const n of offer) if (isHashName(n) && hashAvailable(n)) return n;
  throw new WirekitError('WK_HASH_UNSUPPORTED', `none of the offered hashes (${offer.map(String).join(', ')}) is available on the daemon; it has ${availableHashes().join(', ')}`, { origin: 'remote' });
}

/**
 * The hash a reply names (`hash`): missing means SHA-256 (a daemon from before BLAKE3). A name
 * the client did not offer is a protocol error.
 */
export function acceptedHash(reply: unknown, offered: readonly HashName[]): HashName {
  const named = (reply as { hash?: unknown } | null)?.hash;
  const name: unknown = named === undefined ? 'sha256' : named;
  if (isHashName(name) && offered.includes(name)) return name;
  if (named === undefined) throw new WirekitError('WK_HASH_UNSUPPORTED', `the daemon only knows SHA-256 (it is older than BLAKE3 support); asked for ${offered.map((n) => HASH_LABELS[n]).join(' or ')}`, { origin: 'remote' });
  throw new WirekitError('WK_PROTOCOL', `the daemon chose hash ${String(named)}, which was not offered`, { origin: 'remote' });
}
