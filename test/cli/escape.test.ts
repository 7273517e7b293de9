/** The escape keys of shell and exec -t (sans-I/O), and forward's spec forms. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DEFAULT_ESCAPE, EscapeScanner, parseEscape, type EscapeSpec } from '../../src/cli/escape.js';
import { parseSpec } from '../../src/cli/forward.js';

/** Feeds `typed` in the given pieces: what is sent, and what ended the session. */
function run(spec: EscapeSpec, pieces: string[]): { sent: string; end?: string } {
  const s = new EscapeScanner(spec);
  let sent = '';
  for (const p of pieces) {
    const r = s.feed(Buffer.from(p, 'latin1'));
    sent += Buffer.from(r.send).toString('latin1');
    if (r.end !== undefined) return { sent, end: r.end };
  }
  return { sent };
}

test('the default escape: Ctrl-] anywhere, ~. only at the start of a line, ~~ sends one ~', () => {
  assert.deepEqual(run(DEFAULT_ESCAPE, ['ls\x1dmore']), { sent: 'ls', end: '^]' });
  assert.deepEqual(run(DEFAULT_ESCAPE, ['~.']), { sent: '', end: '~.' });
  assert.deepEqual(run(DEFAULT_ESCAPE, ['ls\r', '~', '.']), { sent: 'ls\r', end: '~.' });
  assert.deepEqual(run(DEFAULT_ESCAPE, ['a~.b\r']), { sent: 'a~.b\r' });
  assert.deepEqual(run(DEFAULT_ESCAPE, ['~~.\r']), { sent: '~.\r' });
  assert.deepEqual(run(DEFAULT_ESCAPE, ['~x']), { sent: '~x' });
  assert.deepEqual(run(DEFAULT_ESCAPE, ['\n~', '~', '~.']), { sent: '\n~~.' });
});

test('--escape: ^X, a character used the ssh way, none; bad ones are usage errors', () => {
  assert.deepEqual(parseEscape('^]'), { control: 0x1d });
  assert.deepEqual(parseEscape('^a'), { control: 0x01 });
  assert.deepEqual(parseEscape('^?'), { control: 0x7f });
  assert.deepEqual(parseEscape('%'), { lineStart: 0x25 });
  assert.deepEqual(parseEscape('none'), {});
  assert.deepEqual(run(parseEscape('none'), ['~.\x1d']), { sent: '~.\x1d' });
  assert.deepEqual(run(parseEscape('%'), ['~.\r%.']), { sent: '~.\r', end: '%.' });
  for (const bad of ['xy', '.', '^1', '']) assert.throws(() => parseEscape(bad), /invalid --escape/);
});

test('the escape is found however the typed bytes are split', () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom('a', '~', '.', '\r', '\x1d') }), fc.array(fc.nat(), { maxLength: 8 }), (typed, cuts) => {
      const at = [...new Set(cuts.map((c) => c % (typed.length + 1)))].sort((x, y) => x - y);
      const pieces: string[] = [];
      let from = 0;
      for (const c of [...at, typed.length]) {
        pieces.push(typed.slice(from, c));
        from = c;
      }
      assert.deepEqual(run(DEFAULT_ESCAPE, pieces), run(DEFAULT_ESCAPE, [...typed]));
    }),
  );
});

test("forward specs: ssh's [BIND:]LOCAL:HOST:PORT, kubectl's LOCAL:REMOTE, PORT and :PORT", () => {
  assert.deepEqual(parseSpec('9002:8765'), { bind: '127.0.0.1', localPort: 9002, host: 'localhost', port: 8765 });
  assert.deepEqual(parseSpec('8765'), { bind: '127.0.0.1', localPort: 8765, host: 'localhost', port: 8765 });
  assert.deepEqual(parseSpec(':8765'), { bind: '127.0.0.1', localPort: 0, host: 'localhost', port: 8765 });
  assert.deepEqual(parseSpec('0.0.0.0:9002:db.internal:5432'), { bind: '0.0.0.0', localPort: 9002, host: 'db.internal', port: 5432 });
  assert.deepEqual(parseSpec('[::1]:9002:[fe80::1]:22'), { bind: '::1', localPort: 9002, host: 'fe80::1', port: 22 });
  for (const bad of ['9002:x', 'a:b:c', '9002:0', '70000:1']) assert.throws(() => parseSpec(bad), /forward spec|PORT|between/, bad);
});
