/**
 * Decoding a capture of one direction of an agent connection from byte 0, sans-I/O: the control
 * phase (one JSON object per line), then, after a session command, what the connection carries
 * from the next byte on, the way the daemon and client switch:
 *
 * - exec, terminal, forward: session frames (`session-frames.ts`) to the end.
 * - upload (client to daemon) and download (daemon to client): exactly `size` raw bytes and their
 *   32-byte digest, then control lines again (the transfer's progress and result).
 *
 * A client-to-daemon capture names the command (`{"cmd":"exec"}`); a daemon-to-client capture
 * shows only the replies, so the switch is seen from the bytes: after a reply line, a byte that
 * no JSON line starts with (a session frame type, 0x01-0x08: not TAB or LF) means session frames follow, and a
 * download's reply (`{"status":true,"response":{"path","size","mode"}}`) announces its bytes.
 */
import type { ByteQueue } from '../bytes/byte-queue.js';
import type { Decoder } from '../codecs/codec.js';
import { ndjson } from '../codecs/lines.js';
import { sessionCodec, type SessionFrame } from './session-frames.js';

export type AgentStreamFrame =
  | { kind: 'control'; message: unknown }
  | { kind: 'session'; frame: SessionFrame }
  /** Raw file bytes of an upload or download (one frame per chunk as it came), and the digest. */
  | { kind: 'file'; payload: Uint8Array };

/** Commands after which session frames follow. */
const FRAMED = new Set(['exec', 'terminal', 'forward']);
/** Bytes after the file data: its digest. */
const DIGEST_BYTES = 32;
/** The largest file chunk returned as one frame. */
const FILE_CHUNK = 64 * 1024;

export class AgentStreamDecoder implements Decoder<AgentStreamFrame> {
  readonly name = 'agent stream';
  private readonly control;
  private readonly frames;
  private mode: 'control' | 'session' | 'file' = 'control';
  /** File bytes (and digest) still to come in `file` mode. */
  private fileLeft = 0;
  /** Client side: the file transfer whose request was the last line. */
  private pendingUpload: number | undefined;

  constructor(options: { maxLineLength?: number; maxFrameLength?: number } = {}) {
    this.control = ndjson({ maxLineLength: options.maxLineLength ?? 16 * 1024 * 1024 });
    this.frames = sessionCodec({ maxFrameLength: options.maxFrameLength });
  }

  decode(queue: ByteQueue): AgentStreamFrame | undefined {
    if (this.mode === 'session') {
      const frame = this.frames.decode(queue);
      return frame && { kind: 'session', frame };
    }
    if (this.mode === 'file') {
      if (queue.length === 0) return undefined;
      const n = Math.min(this.fileLeft, queue.length, FILE_CHUNK);
      const payload = queue.read(n)!;
      this.fileLeft -= n;
      if (this.fileLeft === 0) this.mode = 'control';
      return { kind: 'file', payload };
    }
    if (queue.length === 0) return undefined;
    const first = queue.byteAt(0);
    if (first >= 0x01 && first <= 0x08) {
      // No JSON line starts with a session frame type byte: the reply switched the connection.
      this.mode = 'session';
      return this.decode(queue);
    }
    const message = this.control.decode(queue);
    if (message === undefined) return undefined;
    this.follow(message);
    return { kind: 'control', message };
  }

  decodeEof(queue: ByteQueue): AgentStreamFrame | undefined {
    if (this.mode === 'session') {
      const frame = this.frames.decodeEof?.(queue);
      return frame && { kind: 'session', frame };
    }
    if (this.mode === 'file') return this.decode(queue);
    const message = this.control.decodeEof?.(queue);
    return message === undefined ? undefined : { kind: 'control', message };
  }

  /** Switches after a line the way the peers do. */
  private follow(message: unknown): void {
    if (typeof message !== 'object' || message === null) return;
    const m = message as { cmd?: unknown; opts?: { size?: unknown }; status?: unknown; response?: { size?: unknown; path?: unknown; mode?: unknown } };
    if (typeof m.cmd === 'string') {
      if (FRAMED.has(m.cmd)) this.mode = 'session';
      // An upload's bytes follow its reply, which the client awaits: they come after this line.
      this.pendingUpload = m.cmd === 'upload' && typeof m.opts?.size === 'number' ? m.opts.size : undefined;
      if (this.pendingUpload !== undefined) this.startFile(this.pendingUpload);
      return;
    }
    const r = m.response;
    if (m.status === true && r && typeof r.size === 'number' && typeof r.path === 'string' && 'mode' in r) this.startFile(r.size);
  }

  private startFile(size: number): void {
    this.mode = 'file';
    this.fileLeft = size + DIGEST_BYTES;
  }
}

/** A decoder for captures of agent connections (either direction), from byte 0. */
export function agentStream(options?: { maxLineLength?: number; maxFrameLength?: number }): AgentStreamDecoder {
  return new AgentStreamDecoder(options);
}
