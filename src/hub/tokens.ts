/**
 * Signed, expiring user tokens: HS256 JSON Web Tokens with the claims Overlord's hub puts in its
 * own (`username`, `is_admin`, `exp`, `iat`, `iss`), so its `ovl` CLI and dashboard can carry them
 * unchanged. The key is the hub's secret; signatures are compared in constant time, and only
 * HS256 is accepted (a token that names another algorithm, `none` included, is refused).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { HubAuthError } from './errors.js';

export interface TokenClaims {
  readonly username: string;
  readonly is_admin: boolean;
  /** Expiry, seconds since the epoch. */
  readonly exp: number;
  /** Issued at, seconds since the epoch. */
  readonly iat: number;
  readonly iss: string;
}

/** Overlord's token lifetime: 7 days. */
export const DEFAULT_TOKEN_LIFETIME_S = 7 * 24 * 3600;
/** Longest token accepted before any parsing, in bytes. */
export const MAX_TOKEN_LENGTH = 4096;
const ISSUER = 'overlord';
const HEADER = base64url(Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })));

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** A fresh random 32-byte signing secret. */
export function newTokenSecret(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

export class TokenSigner {
  constructor(
    private readonly secret: Uint8Array,
    private readonly lifetimeS: number = DEFAULT_TOKEN_LIFETIME_S,
  ) {
    if (secret.length < 16) throw new HubAuthError('token secret must be at least 16 bytes');
  }

  private mac(data: string): Buffer {
    return createHmac('sha256', this.secret).update(data).digest();
  }

  /** A token for `username`, valid for the signer's lifetime from `nowMs`. */
  sign(username: string, isAdmin: boolean, nowMs: number = Date.now()): { token: string; expire: number } {
    const iat = Math.floor(nowMs / 1000);
    const claims: TokenClaims = { username, is_admin: isAdmin, exp: iat + this.lifetimeS, iat, iss: ISSUER };
    const body = `${HEADER}.${base64url(Buffer.from(JSON.stringify(claims)))}`;
    return { token: `${body}.${base64url(this.mac(body))}`, expire: claims.exp };
  }

  /** The claims of a valid, unexpired token; throws `HubAuthError` ("invalid token") otherwise. */
  verify(token: string, nowMs: number = Date.now()): TokenClaims {
    const invalid = () => new HubAuthError('invalid token');
    if (token.length > MAX_TOKEN_LENGTH) throw invalid();
    const parts = token.split('.');
    if (parts.length !== 3) throw invalid();
    const [header, payload, signature] = parts as [string, string, string];
    const expected = this.mac(`${header}.${payload}`);
    const given = Buffer.from(signature, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
    let head: unknown;
    let claims: unknown;
    try {
      head = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      throw invalid();
    }
    if (typeof head !== 'object' || head === null || (head as { alg?: unknown }).alg !== 'HS256') throw invalid();
    if (!isClaims(claims)) throw invalid();
    if (claims.exp * 1000 <= nowMs) throw new HubAuthError('token expired');
    return claims;
  }
}

function isClaims(v: unknown): v is TokenClaims {
  if (typeof v !== 'object' || v === null) return false;
  const c = v as Record<string, unknown>;
  return typeof c.username === 'string' && typeof c.is_admin === 'boolean' && Number.isFinite(c.exp) && Number.isFinite(c.iat) && typeof c.iss === 'string';
}

/** Compares two secrets (enrollment or agent tokens) in constant time, whatever their lengths. */
export function sameSecret(a: string, b: string): boolean {
  const ha = createHmac('sha256', 'wirekit-compare').update(a).digest();
  const hb = createHmac('sha256', 'wirekit-compare').update(b).digest();
  return timingSafeEqual(ha, hb);
}
