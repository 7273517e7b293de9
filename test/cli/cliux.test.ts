/**
 * The CLI as a new user meets it, through the built CLI: help for a command, suggestions for a
 * mistyped one, what to do when no daemon runs, exit 2 for every bad argument, named daemons from
 * ~/.config/wirekit/config, and shell completion built from the commands' option specs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import pty from 'node-pty';
import path from 'node:path';
import { MAIN, cliRunner, waitLine } from '../helpers/cli.js';
import { parseDaemonConfig } from '../../src/cli/daemon-config.js';
import { nearest } from '../../src/cli/suggest.js';

const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-cliux-')));
const runtime = path.join(dir, 'run');
const config = path.join(dir, 'config');
const children = new Set<ChildProcess>();
const env = () => ({ ...process.env, XDG_RUNTIME_DIR: runtime, XDG_CONFIG_HOME: config, HOME: dir, WIREKIT_ADDRESS: '', WIREKIT_TOKEN: '' });
const cli = cliRunner(env, children);

let daemon: ChildProcess;
let tcpAddr = '';

before(async () => {
  mkdirSync(runtime, { mode: 0o700 });
  mkdirSync(path.join(config, 'wirekit'), { recursive: true });
  daemon = spawn(process.execPath, [MAIN, 'serve', '-l', 'tcp://127.0.0.1:0', '--token-file', path.join(dir, 'daemon.token')], { stdio: ['ignore', 'ignore', 'pipe'], env: env() });
  children.add(daemon);
  tcpAddr = (await waitLine(daemon.stderr!, /listening on (tcp:\/\/\S+)/))[1]!;
});

after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('wirekit help CMD prints the command help, like CMD --help', async () => {
  const a = await cli(['help', 'cp']);
  const b = await cli(['cp', '--help']);
  assert.equal(a.code, 0);
  assert.match(a.stdout.toString(), /^Usage: wirekit cp/);
  assert.equal(a.stdout.toString(), b.stdout.toString());
  const topic = await cli(['help', 'config']);
  assert.equal(topic.code, 0);
  assert.match(topic.stdout.toString(), /daemon build1\n\s+address\s+tcp:/);
});

test('a mistyped command or help topic suggests the nearest one and exits 2', async () => {
  for (const [typed, meant] of [['pnig', 'ping'], ['exce', 'exec'], ['sevre', 'serve'], ['forwrd', 'forward']] as const) {
    const r = await cli([typed]);
    assert.equal(r.code, 2, typed);
    assert.match(r.stderr, new RegExp(`unknown command "${typed}"; did you mean \`wirekit ${meant}\``));
  }
  const h = await cli(['help', 'decdoe']);
  assert.equal(h.code, 2);
  assert.match(h.stderr, /did you mean `wirekit help decode`/);
  const far = await cli(['frobnicate']);
  assert.equal(far.code, 2);
  assert.doesNotMatch(far.stderr, /did you mean/);
  assert.match(far.stderr, /Usage: wirekit COMMAND/);
  assert.equal(nearest('zzzz', ['ping', 'exec']), undefined);
});

test('"daemon not running" says how to start it', async () => {
  const r = await cli(['ping']);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /hint: no daemon is listening on \S+agent\.sock; start it with `wirekit serve`/);
  const other = await cli(['ping', '-a', path.join(dir, 'nope.sock')]);
  assert.match(other.stderr, new RegExp(`start it with \`wirekit serve --listen ${path.join(dir, 'nope.sock')}\``));
  const tcp = await cli(['ping', '-a', 'tcp://127.0.0.1:1']);
  assert.equal(tcp.code, 3);
  assert.match(tcp.stderr, /start one there with `wirekit serve --listen tcp:\/\/127\.0\.0\.1:1`/);
});

test('bad arguments exit 2 everywhere, with a message that says what is wrong', async () => {
  const cases: [string[], RegExp][] = [
    [['ping', '-a', 'http://x'], /invalid address "http:\/\/x"/],
    [['ping', '-a', 'localhost:7000'], /did you mean tcp:\/\/localhost:7000\?/],
    [['exec', '-a', '127.0.0.1:7000', '--', 'true'], /did you mean tcp:\/\/127\.0\.0\.1:7000\?/],
    [['serve', '--listen', 'tcp://0.0.0.0:80000'], /port 80000 is out of range/],
    [['serve', '--listen', 'localhost:7000'], /did you mean tcp:\/\/localhost:7000\?/],
    [['ping', '-a', tcpAddr, '--token-file', path.join(dir, 'missing.token')], /--token-file \S+missing\.token: no such file/],
    [['ping', '-a', tcpAddr.replace('tcp:', 'tls:'), '--token', 'x', '--ca', path.join(dir, 'missing.pem')], /--ca \S+missing\.pem: no such file/],
    [['ping', '-a', 'nosuchname'], /no daemon named "nosuchname" in \S+config/],
    [['ping', '--bogus'], /unknown option --bogus/],
    [['completion', 'fish'], /wirekit completion bash\|zsh/],
  ];
  for (const [args, re] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
  }
});

test('named daemons: -a NAME uses the address and token file from ~/.config/wirekit/config', async () => {
  writeFileSync(path.join(dir, 'build1.token'), readFileSync(path.join(dir, 'daemon.token')));
  writeFileSync(
    path.join(config, 'wirekit', 'config'),
    `# wirekit daemons\ndaemon build1\n  address    ${tcpAddr}\n  token-file ~/build1.token\n\ndaemon wrongtoken\n  address=${tcpAddr}\n  token-file ../wrong.token   # relative to the config's directory\n`,
  );
  writeFileSync(path.join(config, 'wrong.token'), 'not-the-token\n');
  const ok = await cli(['ping', '-a', 'build1']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout.toString(), new RegExp(`pong from ${tcpAddr.replace(/\./g, '\\.')}`));
  const viaEnv = await cli(['exec', '--', 'echo', 'hi'], { env: { WIREKIT_ADDRESS: 'build1' } });
  assert.equal(viaEnv.code, 0, viaEnv.stderr);
  assert.equal(viaEnv.stdout.toString(), 'hi\n');
  const wrong = await cli(['ping', '-a', 'wrongtoken']);
  assert.equal(wrong.code, 3, 'the configured token file is the one used');
  // --token-file on the command line wins over the configured one.
  const override = await cli(['ping', '-a', 'wrongtoken', '--token-file', path.join(dir, 'build1.token')]);
  assert.equal(override.code, 0, override.stderr);
  const bad = path.join(dir, 'bad-config');
  assert.throws(() => parseDaemonConfig('address tcp://h:1\n', bad), /bad-config:1: address before any "daemon NAME" line/);
  assert.throws(() => parseDaemonConfig('daemon a\n  adress tcp://h:1\n', bad), /bad-config:2: unknown key adress/);
  assert.throws(() => parseDaemonConfig('daemon a\n  address localhost:7\n', bad), /bad-config:2: .*did you mean tcp:\/\/localhost:7/);
  assert.throws(() => parseDaemonConfig('daemon a\n', bad), /daemon a has no address/);
  writeFileSync(path.join(config, 'wirekit', 'config'), 'daemon x\n  colour blue\n');
  const broken = await cli(['ping', '-a', 'x']);
  assert.equal(broken.code, 2);
  assert.match(broken.stderr, /config:2: unknown key colour/);
});

/** Completions bash offers for `words` (the last one being completed). */
function bashComplete(script: string, words: string[]): string[] {
  const line = `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _wirekit; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['--norc', '-c', line], { encoding: 'utf8', cwd: dir, env: { ...process.env, XDG_CONFIG_HOME: config } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

test('wirekit completion bash completes commands and each command\'s own options', async (t) => {
  const r = await cli(['completion', 'bash']);
  assert.equal(r.code, 0, r.stderr);
  const script = r.stdout.toString();
  assert.match(script, /complete -o default -F _wirekit wirekit/);
  if (spawnSync('bash', ['--version']).status !== 0) return t.skip('no bash');
  assert.deepEqual(bashComplete(script, ['wirekit', 'p']), ['ping']);
  assert.deepEqual(bashComplete(script, ['wirekit', 'c']).sort(), ['completion', 'cp']);
  assert.deepEqual(bashComplete(script, ['wirekit', 'exec', '--no-']), ['--no-stdin']);
  assert.deepEqual(bashComplete(script, ['wirekit', 'serve', '--tls-']).sort(), ['--tls-cert', '--tls-key']);
  assert.deepEqual(bashComplete(script, ['wirekit', 'decode', '--co']), ['--codec']);
  assert.deepEqual(bashComplete(script, ['wirekit', 'help', 'con']), ['config']);
  assert.deepEqual(bashComplete(script, ['wirekit', 'completion', '']).sort(), ['bash', 'zsh']);
  writeFileSync(path.join(config, 'wirekit', 'config'), `daemon build1\n  address ${tcpAddr}\ndaemon build2\n  address ${tcpAddr}\n`);
  const forA = bashComplete(script, ['wirekit', 'ping', '-a', 'bui']);
  assert.ok(forA.includes('build1') && forA.includes('build2'), `named daemons (and socket files) for -a: ${forA.join(' ')}`);
  // Options come from the spec the command parses with: each one offered is accepted.
  for (const opt of bashComplete(script, ['wirekit', 'cp', '--'])) {
    const h = await cli(['cp', opt, ...(['--json', '--no-progress', '--insecure', '--help'].includes(opt) ? [] : ['x']), '--help']);
    assert.equal(h.code, 0, `cp ${opt}: ${h.stderr}`);
  }
});

test('wirekit completion zsh prints a #compdef script with every command', async (t) => {
  const r = await cli(['completion', 'zsh']);
  assert.equal(r.code, 0, r.stderr);
  const script = r.stdout.toString();
  assert.match(script, /^#compdef wirekit\n/);
  for (const c of ['serve', 'ping', 'exec', 'shell', 'cp', 'forward', 'decode', 'completion']) assert.match(script, new RegExp(`\\n    ${c}\\) _arguments `));
  assert.match(script, /'\*--listen:listen:_files'/);
  if (spawnSync('zsh', ['--version']).status !== 0) return t.skip('no zsh to check the syntax with');
  const check = spawnSync('zsh', ['-n', '-c', script], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
  // In a real zsh on a pty: what Tab gives after each typed line.
  const file = path.join(dir, '_wirekit');
  writeFileSync(file, script);
  const term = pty.spawn('zsh', ['-f', '-i'], { cols: 200, rows: 30, cwd: dir, env: { ...process.env, HOME: dir, XDG_CONFIG_HOME: config, PS1: '> ' } as Record<string, string> });
  let out = '';
  term.onData((d) => (out += d));
  const until = async (re: RegExp) => {
    for (let i = 0; i < 100 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    return re.test(out);
  };
  try {
    term.write(`autoload -U compinit; compinit -u; source ${file}; echo READY\r`);
    assert.ok(await until(/READY\r?\n/), out);
    const tab = async (typed: string, re: RegExp) => {
      out = '';
      term.write(`${typed}\t`);
      assert.ok(await until(re), `${typed}<TAB>: ${JSON.stringify(out)}`);
      term.write('\x15'); // kill the line
    };
    await tab('wirekit pi', /wirekit ping/);
    await tab('wirekit exec --no-', /--no-stdin/);
    await tab('wirekit serve --tls-c', /--tls-cert/);
    await tab('wirekit completion ', /bash\s+zsh/);
    await tab('wirekit help con', /help config/);
    writeFileSync(path.join(config, 'wirekit', 'config'), `daemon lab7\n  address ${tcpAddr}\n`);
    await tab('wirekit ping -a la', /-a lab7/);
  } finally {
    term.kill();
  }
});
