/**
 * Exec sessions: a program with pipes for stdin, stdout and stderr, its exit status at the end.
 * Daemon half (`execKind`): options, the program started before the reply (`{"pid": N}`), then
 * DATA/EOF/SIGNAL frames in and STDOUT/STDERR/EXIT frames out. Client half (`clientExec`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { PassThrough, Writable, type Duplex } from 'node:stream';
import type { FrameStream } from '../frame-stream.js';
import type { Logger } from '../log.js';
import { encodeExit, FrameType, type ExitStatus, type SessionFrame } from '../session-frames.js';
import type { ClientContext, SessionContext, SessionKind } from './context.js';
import { pump, reportSessionError, runClientSession, writeOut, writeWithBackpressure } from './frames.js';
import { badOptions, envRecord, stringArray } from './options.js';
import { sessionCwd, sessionEnv } from './environment.js';
import { grace, killSession, reaped, signalGroup, signalName, spawnError, startSupervisor, type Supervisor } from './process.js';

/** Options of an exec session (the `exec` command's `opts`). */
export interface ExecOptions {
  argv: string[];
  cwd?: string;
  env?: Record<string, string>;
}

/** Checks the `opts` of an exec request. */
export function parseExecOptions(o: Record<string, unknown>): ExecOptions {
  const argv = stringArray(o.argv, 'argv');
  if (o.cwd !== undefined && typeof o.cwd !== 'string') throw badOptions('cwd must be a string');
  return { argv, cwd: o.cwd as string | undefined, env: envRecord(o.env) };
}

/**
 * How long what a program left behind (a background child holding its stdout) may go on writing
 * after the program exited; then the session's whole process tree is killed and EXIT is sent.
 */
export const LEFT_BEHIND_GRACE_MS = 2000;

/** A started exec program and the supervisor that kills its session's processes if the daemon dies. */
export interface StartedExec {
  child: ChildProcess;
  supervisor: Supervisor;
}

/**
 * Starts a program for an exec session, as the leader of its own Unix session (`setsid`), with a
 * supervisor watching it; resolves once it is running (rejects with the spawn error, e.g. ENOENT,
 * so the command can be refused before the switch).
 */
export function startExec(opts: ExecOptions, log?: Logger): Promise<StartedExec> {
  const supervisor = startSupervisor(log);
  return new Promise<StartedExec>((resolve, reject) => {
    const child = spawn(opts.argv[0]!, opts.argv.slice(1), {
      cwd: opts.cwd,
      env: sessionEnv(opts.env), // a clean environment, as ssh gives (never the daemon's own)
      stdio: 'pipe',
      detached: true, // setsid: its own session and process group, so the whole tree can be ended
    });
    supervisor.watch(child.pid); // at once: no moment without a supervisor that knows it
    child.once('spawn', () => resolve({ child, supervisor }));
    child.once('error', (err: NodeJS.ErrnoException) => {
      supervisor.release();
      reject(spawnError(opts.argv[0]!, err));
    });
  }).catch((err: unknown) => {
    supervisor.release();
    throw err;
  });
}

/**
 * Runs an exec session on a started program. Resolves when it ends (either side), and then no
 * process of the session is left: when the program exits, what it left behind gets
 * `LEFT_BEHIND_GRACE_MS` to finish its output, then everything in its session is killed; when
 * the client goes first, everything is killed at once.
 */
export async function runExec(fs: FrameStream, { child, supervisor }: StartedExec, log: Logger): Promise<void> {
  child.stdin!.on('error', () => {});
  const outs = Promise.all([pump(child.stdout!, fs, FrameType.STDOUT), pump(child.stderr!, fs, FrameType.STDERR)]);
  const exited = new Promise<ExitStatus>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let finished = false;
  const done = (async () => {
    const status = await exited;
    await Promise.race([outs, grace(LEFT_BEHIND_GRACE_MS)]);
    killSession(child.pid, true);
    // A process that left the session (setsid) may still hold the pipes: stop reading them.
    await Promise.race([outs, grace(500)]);
    child.stdout!.destroy();
    child.stderr!.destroy();
    finished = true;
    fs.send(FrameType.EXIT, encodeExit(status));
    fs.end();
  })();
  try {
    await fs.run(async (f: SessionFrame) => {
      switch (f.type) {
        case FrameType.DATA:
          await writeWithBackpressure(child.stdin!, f.payload);
          return;
        case FrameType.EOF:
          child.stdin!.end();
          return;
        case FrameType.SIGNAL:
          signalGroup(child.pid, signalName(f.payload));
          return;
        default:
          throw badOptions(`unexpected ${f.type} frame in an exec session`);
      }
    });
  } catch (err) {
    reportSessionError(fs, 'exec', err, log);
  }
  try {
    if (!finished) {
      // The client went away (or broke the protocol) before the program ended.
      killSession(child.pid, reaped(child));
      child.stdin!.destroy();
      await Promise.race([done, grace(2000)]);
    } else {
      await done;
    }
  } finally {
    supervisor.release();
    fs.close();
  }
}

/** Daemon half of the `exec` command. */
export const execKind: SessionKind<ExecOptions, { options: ExecOptions; started: StartedExec }> = {
  cmd: 'exec',
  async parse(opts, ctx: SessionContext) {
    const eo = parseExecOptions(opts);
    eo.cwd = await sessionCwd(eo.cwd, ctx); // the home directory unless the client names one
    return eo;
  },
  async prepare(options, ctx) {
    return { options, started: await startExec(options, ctx.log) };
  },
  reply: ({ started }) => ({ pid: started.child.pid }),
  run({ options, started }, io: Duplex, ctx) {
    ctx.log.info(`exec ${JSON.stringify(options.argv)} pid ${started.child.pid}`);
    return runExec(ctx.frames(io), started, ctx.log);
  },
};

/** A running exec session. */
export interface ExecSession {
  /** Daemon-side process id. */
  pid: number | undefined;
  stdout: PassThrough;
  stderr: PassThrough;
  /** Writes become DATA frames; `end()` sends EOF. */
  stdin: Writable;
  /** Resolves with the exit status; rejects if the session fails. */
  exit: Promise<ExitStatus>;
  /** Sends a signal to the program. */
  signal(name: NodeJS.Signals): void;
  /** Drops the connection (the daemon kills the program). */
  close(): void;
}

/** What the client asks for when it runs a program. */
export interface ClientExecOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Sent together with the request (typed-ahead stdin). */
  input?: Uint8Array;
  /** Send EOF right after `input`. */
  endInput?: boolean;
}

/** Client half: runs `argv` on the daemon. */
export async function clientExec(client: ClientContext, argv: string[], opts: ClientExecOptions = {}): Promise<ExecSession> {
  const codec = client.codec;
  const ahead: Uint8Array[] = [];
  if (opts.input && opts.input.length > 0) {
    for (let i = 0; i < opts.input.length; i += codec.maxFrameLength) {
      const part = opts.input.subarray(i, i + codec.maxFrameLength);
      ahead.push(codec.header(FrameType.DATA, part.length), part);
    }
  }
  if (opts.endInput) ahead.push(codec.header(FrameType.EOF, 0));
  const { reply, stream } = await client.open('exec', { argv, cwd: opts.cwd, env: opts.env }, ahead);
  const fs = client.frames(stream);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let inputEnded = opts.endInput ?? false;
  const stdin = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (fs.send(FrameType.DATA, chunk)) cb();
      else fs.drained().then(() => cb(), cb);
    },
    final(cb) {
      if (!inputEnded) fs.send(FrameType.EOF);
      inputEnded = true;
      cb();
    },
  });
  if (inputEnded) stdin.end();
  const exit = runClientSession('exec', fs, async (f) => {
    if (f.type === FrameType.STDOUT) await writeOut(stdout, f.payload);
    else if (f.type === FrameType.STDERR) await writeOut(stderr, f.payload);
    else return false;
    return true;
  }).finally(() => {
    stdout.end();
    stderr.end();
  });
  exit.catch(() => {});
  return {
    pid: (reply as { pid?: number } | null)?.pid,
    stdout,
    stderr,
    stdin,
    exit,
    signal: (name) => void fs.send(FrameType.SIGNAL, Buffer.from(name)),
    close: () => fs.close(),
  };
}
