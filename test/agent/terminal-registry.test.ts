import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foregroundGroup, terminalPid, terminalSlot, terminalCwd } from '../../src/agent/sessions/terminal-registry.js';

test('foregroundGroup reads tpgid after the command name, spaces and parentheses in it too', () => {
  assert.equal(foregroundGroup('123 (a b) c) S 1 123 123 34817 456 4194560 0'), 456);
  assert.equal(foregroundGroup('123 (bash) S 1 123 123 0 -1 4194560'), undefined);
});

test('a terminal is found only from the scope that opened it, and only until its program exits', async () => {
  const slot = terminalSlot({ scope: 'hub user ann' });
  let exit!: () => void;
  slot.attach(process.pid, new Promise<void>((r) => (exit = r)));
  assert.equal(terminalPid(slot.id, 'hub user ann'), process.pid);
  assert.equal(terminalPid(slot.id, 'hub user bob'), undefined);
  assert.equal(terminalPid(slot.id, undefined), undefined, 'a direct client cannot name a hub user’s terminal');
  await assert.rejects(terminalCwd(slot.id, 'hub user bob'), { code: 'WK_NOT_FOUND' });
  if (process.platform === 'linux') assert.equal(await terminalCwd(slot.id, 'hub user ann'), process.cwd());
  exit();
  await new Promise((r) => setImmediate(r));
  assert.equal(terminalPid(slot.id, 'hub user ann'), undefined);
  const direct = terminalSlot({});
  direct.attach(process.pid, new Promise(() => {}));
  assert.equal(terminalPid(direct.id, undefined), process.pid);
  assert.equal(terminalPid(direct.id, 'hub user ann'), undefined);
});
