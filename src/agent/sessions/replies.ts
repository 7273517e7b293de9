/** Control-line replies written by a session after the switch (a transfer's progress and result). */
import type { Duplex } from 'node:stream';
import { utf8Encode } from '../../bytes/text.js';
import { WirekitError } from '../../errors.js';
import { errorLine, progressLine, responseLine } from '../../protocols/control/messages.js';

/** The message and `WK_*` code of an error reply. */
export function failure(err: unknown): { message: string; code: string } {
  return { message: err instanceof Error ? err.message : String(err), code: err instanceof WirekitError ? err.code : 'WK_INTERNAL' };
}

/** A reply channel for transfer progress and the final result (the control lines). */
export interface TransferReplies {
  progress(p: unknown): Promise<void> | void;
  ok(r: unknown): Promise<void> | void;
  fail(err: unknown): Promise<void> | void;
}

/** Transfer progress and result as control lines on the switched connection. */
export function transferReplies(io: Duplex): TransferReplies {
  const w = (line: string) => {
    if (!io.destroyed && !io.writableEnded) io.write(utf8Encode(line + '\n'));
  };
  return {
    progress: (p) => w(progressLine(p)),
    ok: (r) => w(responseLine(r)),
    fail: (err) => {
      const { message, code } = failure(err);
      w(errorLine(message, { code }));
    },
  };
}
