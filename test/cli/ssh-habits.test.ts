/**
 * The CLI as ssh and kubectl users expect it, through the built CLI (terminals through node-pty):
 * where exec and shell programs run and what environment they see, exec -t, the escape keys,
 * forward with several specs and kubectl's shorthand, -v everywhere, TLS/plain mismatches, and
 * serve's try: lines run as typed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pty from 'node-pty';
import { MAIN, cliRunner, waitLine } from '../helpers/cli.js';
import { repoRoot } from '../helpers/paths.js';
import { DEFAULT_PATH, ROOT_PATH, defaultLocale } from '../../src/agent/sessions/environment.js';

const TLS_DIR = path.join(repoRoot(), 'test/fixtures/tls');
const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-ssh-')));
const runtime = path.join(dir, 'run');
const sock = path.join(dir, 'agent.sock');
const children = new Set<ChildProcess>();
const terms = new Set<pty.IPty>();
const env = () => ({ ...process.env, XDG_RUNTIME_DIR: runtime, XDG_CONFIG_HOME: path.join(dir, 'config'), WIREKIT_ADDRESS: `unix:${sock}`, WIREKIT_TOKEN: '' });
const cli = cliRunner(env, children);
const user = os.userInfo();

before(async () => {
  mkdirSync(runtime, { mode: 0o700 });
  // What the daemon's own environment holds must not reach the programs it starts.
  const daemonEnv = { ...env(), npm_config_leak: 'from-the-daemon', PATH: `${path.join(dir, 'node_modules/.bin')}:${process.env.PATH}`, WIREKIT_LEAK: 'yes' };
  const daemon = spawn(process.execPath, [MAIN, 'serve', '-l', sock], { stdio: ['ignore', 'ignore', 'pipe'], env: daemonEnv, cwd: dir });
  children.add(daemon);
  await waitLine(daemon.stderr!, /listening on/);
});

after(() => {
  for (const t of terms) {
    try {
      t.kill('SIGKILL');
    } catch {
      // gone
    }
  }
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** The built CLI in a real terminal. */
function inPty(args: string[], extraEnv: Record<string, string> = {}) {
  const term = pty.spawn(process.execPath, [MAIN, ...args], { cols: 100, rows: 30, cwd: dir, env: { ...env(), TERM: 'xterm', PS1: '$ ', ...extraEnv } as Record<string, string> });
  terms.add(term);
  let out = '';
  term.onData((d) => (out += d));
  const exited = new Promise<number>((r) =>
    term.onExit((e) => {
      terms.delete(term);
      r(e.exitCode);
    }),
  );
  return {
    term,
    exited,
    output: () => out,
    async waitFor(re: RegExp): Promise<RegExpExecArray> {
      for (let i = 0; i < 1500; i++) {
        const m = re.exec(out);
        if (m) return m;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`no ${re} in terminal output: ${JSON.stringify(out)}`);
    },
  };
}

/** The NAME=VALUE lines of `env` output. */
function envOf(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf('=');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

test('exec: a clean environment as ssh gives (HOME, USER, LOGNAME, SHELL, PATH, LANG/LC_* from the client, -e), none of the daemon\'s', async () => {
  const r = await cli(['exec', '-e', 'FOO=bar baz', '-e', 'LC_TIME=C', '--', 'env'], { env: { LANG: 'C', LC_TIME: 'en_GB.UTF-8', LC_NUMERIC: 'C' } });
  assert.equal(r.code, 0, r.stderr);
  const e = envOf(r.stdout.toString());
  assert.equal(e.get('HOME'), user.homedir);
  assert.equal(e.get('USER'), user.username);
  assert.equal(e.get('LOGNAME'), user.username);
  assert.equal(e.get('SHELL'), user.shell || '/bin/sh');
  assert.equal(e.get('PATH'), user.uid === 0 ? ROOT_PATH : DEFAULT_PATH);
  assert.equal(e.get('FOO'), 'bar baz');
  assert.equal(e.get('LANG'), 'C', 'LANG is passed from the client, as ssh SendEnv does');
  assert.equal(e.get('LC_NUMERIC'), 'C');
  assert.equal(e.get('LC_TIME'), 'C', '-e wins over the terminal\'s LC_*');
  assert.equal(e.has('TERM'), false, 'no TERM without a terminal');
  for (const k of e.keys()) assert.doesNotMatch(k, /^npm_|^WIREKIT_/, `${k} leaked from the daemon's environment`);
  assert.doesNotMatch(e.get('PATH')!, /node_modules/);
  // No locale from the client (a web console sends none): the system's default one.
  const none = await cli(['exec', '--', 'env'], { env: { LANG: '', LC_ALL: '', LC_CTYPE: '', LC_TIME: '', LC_NUMERIC: '' } });
  const n = envOf(none.stdout.toString());
  for (const [k, v] of Object.entries(defaultLocale())) assert.equal(n.get(k), v, k);
});

test('exec: starts in the home directory; -C is relative to it, ~ and ~/x are expanded', async () => {
  const pwd = async (...cwd: string[]) => {
    const r = await cli(['exec', ...cwd, '--', 'pwd']);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.toString().trim();
  };
  const home = realpathSync(user.homedir);
  assert.equal(realpathSync(await pwd()), home, 'not the daemon\'s working directory');
  assert.equal(realpathSync(await pwd('-C', '~')), home);
  assert.equal(realpathSync(await pwd('-C', '.')), home);
  assert.equal(realpathSync(await pwd('-C', '~/..')), path.dirname(home));
  assert.equal(realpathSync(await pwd('-C', '..')), path.dirname(home));
  assert.equal(await pwd('-C', dir), dir);
});

test('exec under --root: starts in the root (the home directory is outside it), -C relative to it and confined', async () => {
  const root = path.join(dir, 'rootdir');
  mkdirSync(path.join(root, 'sub'), { recursive: true });
  const rsock = path.join(dir, 'root.sock');
  const d = spawn(process.execPath, [MAIN, 'serve', '-l', rsock, '--root', root], { stdio: ['ignore', 'ignore', 'pipe'], env: env() });
  children.add(d);
  await waitLine(d.stderr!, /listening on/);
  const pwd = (...a: string[]) => cli(['exec', '-a', rsock, ...a, '--', 'pwd']);
  assert.equal((await pwd()).stdout.toString(), `${root}\n`);
  assert.equal((await pwd('-C', 'sub')).stdout.toString(), `${root}/sub\n`);
  assert.equal((await pwd('-C', '/sub')).stdout.toString(), `${root}/sub\n`);
  assert.equal((await pwd('-C', '~')).stdout.toString(), `${root}\n`);
  const out = await pwd('-C', '../..');
  assert.equal(out.code, 255);
  assert.match(out.stderr, /outside the allowed root \[WK_PATH_ESCAPE\]/);
  const missing = await pwd('-C', 'nope');
  assert.match(missing.stderr, /working directory nope: no such file or directory \[WK_NOT_FOUND\]/);
  d.kill('SIGTERM');
});

test('exec -C with a missing or forbidden directory blames the directory', async (t) => {
  const missing = path.join(dir, 'no-such-dir');
  const r = await cli(['exec', '-C', missing, '--', 'pwd']);
  assert.equal(r.code, 255);
  assert.match(r.stderr, new RegExp(`working directory ${missing}: no such file or directory \\[WK_NOT_FOUND\\]`));
  assert.doesNotMatch(r.stderr, /no such program/);
  writeFileSync(path.join(dir, 'a-file'), 'x');
  const notDir = await cli(['exec', '-C', path.join(dir, 'a-file'), '--', 'pwd']);
  assert.match(notDir.stderr, /a-file: not a directory \[WK_NOT_DIR\]/);
  const shellToo = await cli(['shell', '-C', missing, '--', 'true']);
  assert.match(shellToo.stderr, /no-such-dir: no such file or directory \[WK_NOT_FOUND\]/);
  if (user.uid === 0) return t.diagnostic('running as root: a forbidden directory cannot be made here, WK_PERMISSION not checked');
  const closed = path.join(dir, 'closed');
  mkdirSync(closed, { mode: 0o000 });
  const denied = await cli(['exec', '-C', closed, '--', 'pwd']);
  chmodSync(closed, 0o700);
  assert.match(denied.stderr, /closed: permission denied \[WK_PERMISSION\]/);
});

test("exec 'echo hi; ls' explains that exec takes argv and suggests sh -c", async () => {
  const r = await cli(['exec', 'echo hi; ls']);
  assert.equal(r.code, 127);
  assert.match(r.stderr, /not a shell command line/);
  assert.match(r.stderr, /wirekit exec -- sh -c 'echo hi; ls'/);
  const plain = await cli(['exec', 'no-such-program-here']);
  assert.equal(plain.code, 127);
  assert.doesNotMatch(plain.stderr, /sh -c/, 'a plain missing program gets no shell hint');
});

test('exec -t and -it allocate a terminal like ssh -t; plain exec has none', async () => {
  const plain = await cli(['exec', '--', 'sh', '-c', 'tty; echo "TERM=${TERM-unset}"']);
  assert.match(plain.stdout.toString(), /not a tty\nTERM=unset\n/);
  for (const flag of ['-t', '-it']) {
    const s = inPty(['exec', flag, '--', 'sh', '-c', 'tty; echo "TERM=$TERM"; stty size; exit 5']);
    await s.waitFor(/\/dev\/pts\/\d+\r*\nTERM=xterm\r*\n30 100/);
    assert.equal(await s.exited, 5, flag);
  }
});

test('shell -C and -e; TERM set; the exit status passes through', async () => {
  const s = inPty(['shell', '-C', dir, '-e', 'GREETING=hello there', '--', 'sh', '-c', 'echo "in $(pwd) $GREETING $TERM $HOME"; exit 3']);
  await s.waitFor(new RegExp(`in ${dir} hello there xterm ${user.homedir}`));
  assert.equal(await s.exited, 3);
});

test('shell: Ctrl-] and ~. after a newline end the session; --escape changes or switches off the key', async () => {
  const shell = (...opts: string[]) => inPty(['shell', ...opts, '--', '/bin/sh']);
  const prompt = async (s: ReturnType<typeof shell>, mark: string) => {
    s.term.write(`echo ${mark}-$((1+1))\r`);
    await s.waitFor(new RegExp(`${mark}-2`));
  };

  let s = shell();
  await prompt(s, 'a');
  s.term.write('\x1d');
  assert.equal(await s.exited, 255);
  assert.match(s.output(), /session ended by \^\]/);
  assert.doesNotMatch(s.output(), /detach/i);

  s = shell();
  await prompt(s, 'b');
  s.term.write('~'); // held back until the next key
  s.term.write('.');
  assert.equal(await s.exited, 255);
  assert.match(s.output(), /session ended by ~\./);

  // ~~ sends one ~; a ~ in the middle of a line is sent as it is.
  s = shell();
  await prompt(s, 'c');
  s.term.write('~~/x; echo a~.b\r');
  await s.waitFor(/[^~]~\/x; echo a~\.b\r*\n[^]*\na~\.b\r*\n/); // the terminal's echo shows what the shell got
  s.term.write('exit 6\r');
  assert.equal(await s.exited, 6);

  s = shell('--escape', '^A');
  await prompt(s, 'd');
  s.term.write('echo tilde-~.\r'); // not at a line start: text
  await s.waitFor(/tilde-~\./);
  s.term.write('\x01');
  assert.equal(await s.exited, 255);
  assert.match(s.output(), /session ended by \^A/);

  s = shell('--escape', 'none');
  await prompt(s, 'e');
  s.term.write('~.\r');
  await s.waitFor(/~\.: not found/);
  s.term.write('exit 4\r');
  assert.equal(await s.exited, 4);

  const bad = await cli(['shell', '--escape', 'xy']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /invalid --escape "xy"/);
});

test('forward: several specs in one command, kubectl\'s LOCAL:REMOTE shorthand, -v prints a line per connection', async (t) => {
  const echo = net.createServer((s) => s.pipe(s));
  const hello = net.createServer((s) => s.end('hello\n'));
  await Promise.all([new Promise<void>((r) => echo.listen(0, '127.0.0.1', r)), new Promise<void>((r) => hello.listen(0, '127.0.0.1', r))]);
  t.after(() => {
    echo.close();
    hello.close();
  });
  const echoPort = (echo.address() as net.AddressInfo).port;
  const helloPort = (hello.address() as net.AddressInfo).port;
  const fwd = spawn(process.execPath, [MAIN, 'forward', '-v', `0:${echoPort}`, `127.0.0.1:0:127.0.0.1:${helloPort}`], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(fwd);
  let stderr = '';
  fwd.stderr!.on('data', (d) => (stderr += d));
  const lines = await waitLine(fwd.stdout!, /listening on 127\.0\.0\.1:(\d+)\nlistening on 127\.0\.0\.1:(\d+)\n/);
  const [a, b] = [Number(lines[1]), Number(lines[2])];
  const roundTrip = (port: number, send: string) =>
    new Promise<string>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1');
      let got = '';
      c.on('data', (d) => (got += d));
      c.on('end', () => resolve(got));
      c.on('error', reject);
      c.end(send);
    });
  assert.equal(await roundTrip(a, 'ping through localhost\n'), 'ping through localhost\n');
  assert.equal(await roundTrip(b, ''), 'hello\n');
  assert.equal(await roundTrip(a, 'again\n'), 'again\n');
  assert.equal(stderr.split('\n').filter((l) => l === `Handling connection for ${a}`).length, 2, stderr);
  assert.equal(stderr.split('\n').filter((l) => l === `Handling connection for ${b}`).length, 1, stderr);
  fwd.kill('SIGTERM');
  await new Promise((r) => fwd.once('close', r));
  const bad = await cli(['forward', '9002:8765:x']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /LOCALPORT:PORT/);
});

test('every client command takes -v; -v says where it connects and where the token came from', async () => {
  for (const cmd of ['ping', 'info', 'exec', 'shell', 'cp', 'forward', 'ls', 'login']) {
    const r = await cli([cmd, '-v', '--help']);
    assert.equal(r.code, 0, `${cmd} -v: ${r.stderr}`);
    assert.match(r.stdout.toString(), /-v, --verbose/, cmd);
  }
  const r = await cli(['ping', '-v']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`wirekit: daemon unix:${sock}\nwirekit: connecting to unix:${sock}\nwirekit: connected to unix:${sock}\n`));
  const e = await cli(['exec', '-v', '--', 'echo', 'quiet stdout']);
  assert.equal(e.stdout.toString(), 'quiet stdout\n', 'the trace goes to stderr');
});

test('TLS against a plain daemon, and plain against a TLS one, say so and name the right scheme; serve\'s try: lines work as typed', async () => {
  const tokenFile = path.join(dir, 'tcp.token');
  const daemon = spawn(
    process.execPath,
    [MAIN, 'serve', '-l', 'tcp://0.0.0.0:0', '-l', 'tls://127.0.0.1:0', '-l', path.join(dir, 'second.sock'), '--tls-cert', path.join(TLS_DIR, 'cert.pem'), '--tls-key', path.join(TLS_DIR, 'key.pem'), '--token-file', tokenFile],
    { stdio: ['ignore', 'ignore', 'pipe'], env: env() },
  );
  children.add(daemon);
  const m = await waitLine(daemon.stderr!, /listening on tcp:\/\/0\.0\.0\.0:(\d+)\n.*listening on tls:\/\/127\.0\.0\.1:(\d+)\n[^]*\(then[^\n]*\n/);
  const [tcpPort, tlsPort] = [m[1]!, m[2]!];
  const tryLines = m[0].split('\n').filter((l) => l.startsWith('try: '));
  assert.equal(tryLines.length, 3, m[0]);
  assert.match(tryLines[0]!, new RegExp(`^try: wirekit ping -a tcp://127\\.0\\.0\\.1:${tcpPort} --token-file ${tokenFile}$`));
  assert.match(tryLines[1]!, new RegExp(`^try: wirekit ping -a tls://127\\.0\\.0\\.1:${tlsPort} --ca \\S+cert\\.pem --token-file ${tokenFile}$`));
  assert.doesNotMatch(m[0], /\| wirekit/, 'no pipeline-looking hint');
  // As typed, in a shell, with a `wirekit` command on PATH.
  const bin = path.join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(path.join(bin, 'wirekit'), `#!/bin/sh\nexec '${process.execPath}' '${MAIN}' "$@"\n`, { mode: 0o755 });
  for (const line of tryLines) {
    const r = spawnSync('sh', ['-c', line.slice('try: '.length)], { encoding: 'utf8', env: { ...env(), WIREKIT_ADDRESS: '', PATH: `${bin}:${process.env.PATH}` }, timeout: 20_000 });
    assert.equal(r.status, 0, `${line}: ${r.stderr}`);
    assert.match(r.stdout, /^pong from /);
  }
  const token = ['--token-file', tokenFile];
  const tlsToPlain = await cli(['ping', '-a', `tls://127.0.0.1:${tcpPort}`, ...token, '--insecure']);
  assert.equal(tlsToPlain.code, 3);
  assert.match(tlsToPlain.stderr, new RegExp(`does not speak TLS there \\(if it listens with plain TCP, use tcp://127\\.0\\.0\\.1:${tcpPort}\\)`));
  const plainToTls = await cli(['ping', '-a', `tcp://127.0.0.1:${tlsPort}`, ...token, '--timeout', '1s']);
  assert.equal(plainToTls.code, 3);
  assert.match(plainToTls.stderr, new RegExp(`if it listens with TLS there, use tls://127\\.0\\.0\\.1:${tlsPort}`));
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('close', r));

  // A token from the environment: the hint says to set it, and the line then works.
  const envToken = readFileSync(tokenFile, 'utf8').trim();
  const d2 = spawn(process.execPath, [MAIN, 'serve', '-l', 'tcp://127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...env(), WIREKIT_TOKEN: envToken } });
  children.add(d2);
  const line = (await waitLine(d2.stderr!, /try: (wirekit ping -a tcp:\/\/127\.0\.0\.1:\d+)\s+\(with \$WIREKIT_TOKEN set to the daemon's token\)/))[1]!;
  const r = spawnSync('sh', ['-c', line], { encoding: 'utf8', env: { ...env(), WIREKIT_ADDRESS: '', WIREKIT_TOKEN: envToken, PATH: `${bin}:${process.env.PATH}` }, timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  d2.kill('SIGTERM');
});
