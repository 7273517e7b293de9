import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { PEERS, skipWithout } from '../helpers/peers.js';
import { connectHub } from '../../src/hub/hub-client.js';
import { clientVia, overlordHub, startGhost, waitFor } from './overlord-helpers.js';
import type { GhostLink } from '../../src/hub/overlord/ghost-link.js';

const skip = skipWithout(PEERS.python);

for (const gen of ['classic', 'current'] as const) {
  test(`${gen}: a ghost registers as an unauthenticated agent with properties.ip; a duplicate mid is refused`, { skip }, async () => {
    const h = await overlordHub();
    const port = gen === 'classic' ? h.classicPort : h.httpPort;
    const g1 = startGhost(['--gen', gen, '--port', String(port), '--mid', 'dev-a', '--properties', '{"hostname":"box","allowlist":["u/ann"]}']);
    await g1.waitLine('registered').catch(async (e) => {
      await h.close();
      throw e;
    });
    const g2 = startGhost(['--gen', gen, '--port', String(port), '--mid', 'dev-a']);
    try {
      assert.equal(await g2.waitLine('refused'), 'refused duplicate machine ID: dev-a');
      const s = await connectHub(h.hub.userAddress, { username: 'ann', password: 'pw-ann' });
      const agents = await s.agents();
      s.close();
      assert.equal(agents.length, 1);
      assert.equal(agents[0]!.id, 'dev-a');
      assert.equal(agents[0]!.hostname, 'box');
      assert.equal(agents[0]!.authenticated, false);
      assert.equal(agents[0]!.properties.ip, '127.0.0.1');
    } finally {
      await g1.kill();
      await g2.kill();
      await h.close();
    }
  });

  test(`${gen}: exec reaches a ghost (stdout and stderr merged, stdin to EOF, exit code), and a download and an upload with checksums`, { skip }, async () => {
    const h = await overlordHub();
    const home = mkdtempSync(path.join(os.tmpdir(), 'wk-ghost-home-'));
    const port = gen === 'classic' ? h.classicPort : h.httpPort;
    const g = startGhost(['--gen', gen, '--port', String(port), '--mid', 'dev-b', '--home', home]);
    try {
      await g.waitLine('registered');
      const c = clientVia(h.hub, 'dev-b');
      const e = await c.exec(['sh', '-c', 'echo out; echo err >&2; cat; exit 3'], { input: Buffer.from('typed ahead\n'), endInput: false });
      e.stdin.end('more ##STDIN_CLOSED## not the marker\n');
      let out = '';
      e.stdout.on('data', (d: Buffer) => (out += String(d)));
      const status = await e.exit;
      assert.equal(status.code, 3);
      assert.match(out, /out\n/);
      assert.match(out, /err\n/);
      assert.match(out, /typed ahead\n/);
      if (gen === 'current') assert.match(out, /more ##STDIN_CLOSED## not the marker\n/);
      // classic: the marker ends stdin and what follows it is dropped
      else assert.ok(out.includes('more ') && !out.includes('not the marker'), out);

      const data = Buffer.alloc(300_000);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
      const local = path.join(home, 'local.bin');
      writeFileSync(local, data);
      const up = await c.upload(local, path.join(home, 'sub', 'up.bin'), { mode: 0o640 });
      assert.equal(up.sha256, createHash('sha256').update(data).digest('hex'));
      await g.waitLine('uploaded');
      assert.deepEqual(readFileSync(path.join(home, 'sub', 'up.bin')), data);
      assert.equal(statSync(path.join(home, 'sub', 'up.bin')).mode & 0o777, 0o640);

      const back = path.join(home, 'back.bin');
      const down = await c.download(path.join(home, 'sub', 'up.bin'), back);
      assert.equal(down.size, data.length);
      assert.deepEqual(readFileSync(back), data);
      await assert.rejects(c.download(path.join(home, 'nope'), path.join(home, 'x')), /not found/);
    } finally {
      await g.kill();
      await h.close();
    }
  });

  test(`${gen}: exec on a ghost that passes stderr on after stdout (as classic ghost.py may): the output in order, the exit code`, { skip }, async () => {
    const h = await overlordHub();
    const port = gen === 'classic' ? h.classicPort : h.httpPort;
    const g = startGhost(['--gen', gen, '--port', String(port), '--mid', 'dev-e', '--stderr-apart']);
    try {
      await g.waitLine('registered');
      const c = clientVia(h.hub, 'dev-e');
      const e = await c.exec(['sh', '-c', 'echo out; echo err >&2; echo out2; exit 4']);
      let out = '';
      e.stdout.on('data', (d: Buffer) => (out += String(d)));
      const status = await e.exit;
      assert.equal(status.code, 4);
      assert.equal(out, 'out\nerr\nout2\n');
    } finally {
      await g.kill();
      await h.close();
    }
  });

  test(`${gen}: a terminal on a ghost: the bytes behind the child's register first, output, UTF-8 input, resize in the ${gen} encoding`, { skip }, async () => {
    const h = await overlordHub();
    const port = gen === 'classic' ? h.classicPort : h.httpPort;
    const g = startGhost(['--gen', gen, '--port', String(port), '--mid', 'dev-c', '--eager', 'EAGER']);
    try {
      await g.waitLine('registered');
      const c = clientVia(h.hub, 'dev-c');
      const t = await c.terminal({ cols: 100, rows: 30 });
      let out = '';
      t.output.on('data', (d: Buffer) => (out += String(d)));
      await g.waitLine('resize 30 100');
      // Sent by the child in the same write as its register: forwarded, not discarded.
      await waitFor(() => out.startsWith('EAGER'), 'the bytes behind the child register');
      t.write('echo "Ѐ-ok-д"; stty size\n');
      // A classic ghost takes every byte 0x80 as a control's start, also inside a character (Ѐ
      // is D0 80), and ends the session on a control that is not JSON: the hub sends U+FFFD for
      // such a character, and the session lives on. д (D0 B4) goes through.
      const echoed = gen === 'classic' ? '\uFFFD-ok-д\r\n' : 'Ѐ-ok-д\r\n';
      await waitFor(() => out.includes(echoed) && out.includes('30 100'), 'echo and stty size');
      t.resize(120, 40);
      await g.waitLine('resize 40 120');
      t.write('stty size; exit\n');
      await waitFor(() => out.includes('40 120'), 'stty size after resize');
      const st = await t.exit;
      assert.equal(st.code, 0);
    } finally {
      await g.kill();
      await h.close();
    }
  });

  test(`${gen}: a forward through a ghost`, { skip }, async () => {
    const h = await overlordHub();
    const echo = net.createServer((s) => s.pipe(s));
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    const port = gen === 'classic' ? h.classicPort : h.httpPort;
    const g = startGhost(['--gen', gen, '--port', String(port), '--mid', 'dev-d']);
    try {
      await g.waitLine('registered');
      const c = clientVia(h.hub, 'dev-d');
      const f = await c.forward(gen === 'classic' ? 'localhost' : '127.0.0.1', (echo.address() as net.AddressInfo).port);
      f.write('ping through the ghost');
      let got = '';
      for await (const d of f) {
        got += String(d);
        if (got.length >= 22) break;
      }
      assert.equal(got, 'ping through the ghost');
      f.destroy();
    } finally {
      await g.kill();
      echo.close();
      await h.close();
    }
  });
}

test('keepalive: a ghost that stops (SIGSTOP) is dropped after the keepalive timeout', { skip }, async () => {
  const h = await overlordHub({ keepaliveTimeoutMs: 600 });
  const g = startGhost(['--port', String(h.classicPort), '--mid', 'dev-k', '--ping-interval', '0.2']);
  try {
    await g.waitLine('registered');
    await new Promise((r) => setTimeout(r, 900)); // pings keep it in (more than one timeout)
    assert.ok(h.hub.hub.registry.get('dev-k'));
    g.proc.kill('SIGSTOP');
    const [left] = (await once(h.hub.hub, 'left')) as [{ id: string }];
    assert.equal(left.id, 'dev-k');
  } finally {
    await g.kill();
    await h.close();
  }
});

for (const gen of ['classic', 'current'] as const) {
  test(`${gen}: concurrent sessions on one ghost each get their own reply (by rid) and output; the ghost's fs requests and upgrade`, { skip }, async () => {
    const h = await overlordHub();
    const home = mkdtempSync(path.join(os.tmpdir(), 'wk-ghost-fs-'));
    const port = gen === 'classic' ? h.classicPort : h.httpPort;
    const g = startGhost(['--gen', gen, '--port', String(port), '--mid', 'dev-p', '--home', home]);
    try {
      await g.waitLine('registered');
      const c = clientVia(h.hub, 'dev-p');
      const runs = await Promise.all(
        Array.from({ length: 6 }, async (_, i) => {
          const e = await c.exec(['sh', '-c', `echo session-${i}; exit ${i}`], { endInput: true });
          let out = '';
          e.stdout.on('data', (d: Buffer) => (out += String(d)));
          return { i, code: (await e.exit).code, out };
        }),
      );
      for (const r of runs) assert.deepEqual([r.code, r.out], [r.i, `session-${r.i}\n`]);

      const link = h.hub.hub.registry.get('dev-p')!.owner as unknown as GhostLink;
      assert.equal((await link.call('mkdir', { path: 'made/deep', perm: 0o750 }))?.ok, true);
      assert.equal(statSync(path.join(home, 'made/deep')).mode & 0o777, 0o750);
      writeFileSync(path.join(home, 'made', 'f.txt'), 'abc');
      assert.equal((await link.call('create_symlink', { target: 'f.txt', dest: 'made/link' }))?.ok, true);
      const st = await link.call('fstat', { path: 'made/link' });
      assert.deepEqual([st?.ok, (st?.payload as { is_symlink: boolean; link_target: string }).is_symlink, (st?.payload as { link_target: string }).link_target], [true, true, 'f.txt']);
      const tree = (await link.call('list_tree', { path: 'made' }))?.payload as { path: string; is_dir: boolean }[];
      assert.deepEqual(tree.map((e) => path.relative(home, e.path)), ['made', 'made/f.txt', 'made/link', 'made/deep']);
      assert.equal(((await link.call('fstat', { path: 'nope' }))?.payload as { exists: boolean }).exists, false);
      assert.equal(await link.call('upgrade', null, -1), undefined);
      await g.waitLine('upgrade-requested');
    } finally {
      await g.kill();
      await h.close();
    }
  });
}

for (const gen of ['classic', 'current'] as const) {
  test(`${gen}: the HTTP API's tty and shell WebSockets reach a ghost`, { skip }, async () => {
    const h = await overlordHub();
    const port = gen === 'classic' ? h.classicPort : h.httpPort;
    const g = startGhost(['--gen', gen, '--port', String(port), '--mid', 'dev-w']);
    try {
      await g.waitLine('registered');
      const { token } = await h.hub.hub.login('ann', 'pw-ann', '127.0.0.1');
      const base = `ws://127.0.0.1:${h.httpPort}/api/agents/dev-w`;
      // shell: all frames together are the output; stdin_close ends stdin
      const sh = new WebSocket(`${base}/shell?command=${encodeURIComponent('cat; echo done')}&token=${encodeURIComponent(token)}`);
      let shOut = '';
      sh.on('message', (d: Buffer) => (shOut += String(d)));
      await once(sh, 'open');
      sh.send(Buffer.from('stdin line\n'));
      sh.send(JSON.stringify({ type: 'stdin_close' }));
      await once(sh, 'close');
      assert.equal(shOut, 'stdin line\ndone\n');
      // tty: binary input, a resize as a JSON text frame
      const tty = new WebSocket(`${base}/tty?cols=90&rows=20&token=${encodeURIComponent(token)}`);
      let ttyOut = '';
      tty.on('message', (d: Buffer, binary: boolean) => {
        if (binary) ttyOut += String(d);
      });
      await once(tty, 'open');
      await g.waitLine('resize 20 90');
      tty.send(JSON.stringify({ type: 'resize', cols: 70, rows: 33 }));
      await g.waitLine('resize 33 70');
      tty.send(Buffer.from('stty size; exit\n'));
      await once(tty, 'close');
      assert.match(ttyOut, /33 70/);
    } finally {
      await g.kill();
      await h.close();
    }
  });
}

test('classic: exec without stdin on a ghost that dies on any stdin byte (ghost.py under Python 3): no marker is sent, the command runs whole', { skip }, async () => {
  const h = await overlordHub();
  const g = startGhost(['--gen', 'classic', '--port', String(h.classicPort), '--mid', 'dev-py3', '--py3-classic-shell']);
  try {
    await g.waitLine('registered');
    const c = clientVia(h.hub, 'dev-py3');
    const e = await c.exec(['sh', '-c', 'sleep 0.3; echo out; exit 5'], { endInput: true });
    let out = '';
    e.stdout.on('data', (d: Buffer) => (out += String(d)));
    const status = await e.exit;
    assert.equal(out, 'out\n');
    assert.equal(status.code, 5);
    assert.ok(!g.lines.includes('shell-crash'), 'the ghost read nothing from the shell socket');
  } finally {
    await g.kill();
    await h.close();
  }
});

for (const gen of ['classic', 'current'] as const) {
  test(`${gen}: a download the ghost starts itself in a terminal (ghost.py --download): the monitor's file download event, GET /api/sessions/{sid}/file once, the allowlist`, { skip }, async () => {
    const h = await overlordHub();
    await h.hub.hub.addUser('bob', 'pw-bob', false);
    const home = mkdtempSync(path.join(os.tmpdir(), 'wk-ghost-home-'));
    const file = path.join(home, 'report "1".bin');
    const content = Buffer.concat([Buffer.from('passive download\n'), createHash('sha256').update('x').digest(), Buffer.alloc(70_000, 7)]);
    writeFileSync(file, content);
    const port = gen === 'classic' ? h.classicPort : h.httpPort;
    const g = startGhost(['--gen', gen, '--port', String(port), '--mid', 'dev-dl', '--home', home, '--passive-download', file, '--properties', '{"allowlist":["u/ann"]}']);
    const base = `http://127.0.0.1:${h.httpPort}`;
    const login = async (username: string, password: string) => {
      const r = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
      return ((await r.json()) as { data: { token: string } }).data.token;
    };
    let ws: WebSocket | undefined;
    try {
      await g.waitLine('registered');
      const ann = await login('ann', 'pw-ann');
      const bob = await login('bob', 'pw-bob');
      ws = new WebSocket(`ws://127.0.0.1:${h.httpPort}/api/monitor?token=${ann}`);
      const events: { event: string; data: unknown[] }[] = [];
      ws.on('message', (m) => events.push(JSON.parse(String(m)) as { event: string; data: unknown[] }));
      await once(ws, 'open');
      const missing = await fetch(`${base}/api/sessions/nope/file?token=${ann}`);
      assert.equal(missing.status, 404);
      assert.deepEqual(await missing.json(), { status: 'error', data: 'No download session with ID nope' });
      const c = clientVia(h.hub, 'dev-dl');
      const t = await c.terminal({ cols: 80, rows: 24 });
      await waitFor(() => events.some((e) => e.event === 'file download'), 'the file download event');
      const ev = events.find((e) => e.event === 'file download')!;
      assert.equal(ev.data.length, 2);
      const [sid, terminalSid] = ev.data as [string, string];
      assert.match(terminalSid, /^[0-9a-f-]{36}$/);
      // bob is not on the ghost's allowlist.
      const denied = await fetch(`${base}/api/sessions/${sid}/file?token=${bob}`);
      assert.equal(denied.status, 403);
      const r = await fetch(`${base}/api/sessions/${sid}/file`, { headers: { authorization: `Bearer ${ann}` } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-length'), String(content.length));
      assert.equal(r.headers.get('content-disposition'), 'attachment; filename="report 1.bin"');
      assert.deepEqual(Buffer.from(await r.arrayBuffer()), content);
      await g.waitLine('downloaded');
      const again = await fetch(`${base}/api/sessions/${sid}/file?token=${ann}`);
      assert.equal(again.status, 404);
      t.write('exit\n');
      await t.exit;
    } finally {
      ws?.terminate();
      await g.kill();
      await h.close();
    }
  });
}

test('a file child nobody asked for from an address with no terminal is refused', { skip }, async () => {
  const h = await overlordHub();
  const s = net.connect(h.classicPort, '127.0.0.1');
  try {
    await once(s, 'connect');
    s.write(JSON.stringify({ rid: 'r1', timeout: 60, name: 'register', params: { mode: 5, mid: 'x', sid: 'f00', properties: {} } }) + '\r\n');
    let got = '';
    s.on('data', (d: Buffer) => (got += String(d)));
    await once(s, 'close');
    assert.match(got, /client f00 registered without context/);
  } finally {
    s.destroy();
    await h.close();
  }
});

for (const gen of ['classic', 'current'] as const) {
  test(`${gen}: Overlord's dashboard on WS /tty: the sid frame first (the ghost's terminal sid, which ghost.py --download names), output, no exit frame`, { skip }, async () => {
    const h = await overlordHub();
    const home = mkdtempSync(path.join(os.tmpdir(), 'wk-ghost-home-'));
    const file = path.join(home, 'dash.bin');
    writeFileSync(file, 'for the dashboard\n');
    const port = gen === 'classic' ? h.classicPort : h.httpPort;
    const g = startGhost(['--gen', gen, '--port', String(port), '--mid', 'dev-dash', '--home', home, '--passive-download', file, '--properties', '{"allowlist":["anyone"]}']);
    const base = `http://127.0.0.1:${h.httpPort}`;
    let mon: WebSocket | undefined;
    let tty: WebSocket | undefined;
    try {
      await g.waitLine('registered');
      const r = await fetch(`${base}/api/auth/login`, { method: 'POST', body: JSON.stringify({ username: 'ann', password: 'pw-ann' }) });
      const token = ((await r.json()) as { data: { token: string } }).data.token;
      mon = new WebSocket(`ws://127.0.0.1:${h.httpPort}/api/monitor?token=${token}`);
      const events: { event: string; data: unknown[] }[] = [];
      mon.on('message', (m) => events.push(JSON.parse(String(m)) as { event: string; data: unknown[] }));
      await once(mon, 'open');
      // As the dashboard opens a terminal: token and size in the query, the resize as a text frame, keys as text.
      tty = new WebSocket(`ws://127.0.0.1:${h.httpPort}/api/agents/dev-dash/tty?token=${encodeURIComponent(token)}&cols=69&rows=22`);
      const texts: string[] = [];
      let out = '';
      tty.on('message', (d: Buffer, binary: boolean) => {
        if (binary) out += d.toString('utf8');
        else texts.push(d.toString('utf8'));
      });
      const closed = new Promise<number>((resolve) => tty!.once('close', (code) => resolve(code)));
      await once(tty, 'open');
      tty.send('\x1b[8;22;69t');
      tty.send('echo dash-$((40+2))\r');
      await waitFor(() => out.includes('dash-42'), 'the output');
      await waitFor(() => texts.length > 0, 'the sid frame');
      const first = JSON.parse(texts[0]!) as { type: string; data: string };
      assert.equal(first.type, 'sid');
      await waitFor(() => events.some((e) => e.event === 'file download'), 'the file download event');
      const [sid, terminalSid] = events.find((e) => e.event === 'file download')!.data as [string, string];
      assert.equal(terminalSid, first.data, 'the dashboard fetches downloads of the terminals whose sid it was told');
      const dl = await fetch(`${base}/api/sessions/${sid}/file?token=${token}`);
      assert.equal(await dl.text(), 'for the dashboard\n');
      tty.send('exit\r');
      assert.equal(await closed, 1000);
      assert.equal(texts.length, 1, `only the sid frame: ${JSON.stringify(texts)}`);
    } finally {
      tty?.terminate();
      mon?.terminate();
      await g.kill();
      await h.close();
    }
  });
}
