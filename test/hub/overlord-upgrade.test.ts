import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitLine } from '../helpers/cli.js';
import { overlordHub } from './overlord-helpers.js';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

test('wirekit hub --ghost-upgrade-file: /upgrade/ghost.py and its .sha1 (40 hex digits and a newline), read at each request', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-ovl-upgrade-'));
  const file = path.join(dir, 'ghost.py');
  writeFileSync(file, '#!/usr/bin/env python3\nprint("new ghost")\n');
  const init = spawn(process.execPath, [MAIN, 'hub', '--init', '--admin-user', 'root', '--state', path.join(dir, 'state')], { env: { ...process.env, WIREKIT_ADMIN_PASS: 'rootpass' }, stdio: 'ignore' });
  await new Promise((r) => init.once('exit', r));
  const hub = spawn(process.execPath, [MAIN, 'hub', '--state', path.join(dir, 'state'), '--agents', '127.0.0.1:0', '--users', '127.0.0.1:0', '--http', '127.0.0.1:0', '--overlord', '--ghost-upgrade-file', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const m = await waitLine(hub.stderr!, /HTTP API on http:\/\/127\.0\.0\.1:(\d+)/);
    const base = `http://127.0.0.1:${m[1]}`;
    const sha = await fetch(`${base}/upgrade/ghost.py.sha1`);
    assert.equal(sha.status, 200);
    assert.equal(await sha.text(), createHash('sha1').update('#!/usr/bin/env python3\nprint("new ghost")\n').digest('hex') + '\n');
    const py = await fetch(`${base}/upgrade/ghost.py`);
    assert.equal(py.status, 200);
    assert.equal(await py.text(), '#!/usr/bin/env python3\nprint("new ghost")\n');
    writeFileSync(file, 'changed\n');
    assert.equal(await (await fetch(`${base}/upgrade/ghost.py.sha1`)).text(), createHash('sha1').update('changed\n').digest('hex') + '\n');
    assert.equal((await fetch(`${base}/upgrade/ghost.linux.amd64.sha1`)).status, 404);
  } finally {
    hub.kill('SIGKILL');
  }
});

test('without --ghost-upgrade-file, /upgrade/ghost.py and .sha1 answer 404 (ghosts take it as no upgrade)', async () => {
  const h = await overlordHub();
  try {
    for (const p of ['/upgrade/ghost.py', '/upgrade/ghost.py.sha1']) {
      assert.equal((await fetch(`http://127.0.0.1:${h.httpPort}${p}`)).status, 404);
    }
  } finally {
    await h.close();
  }
});
