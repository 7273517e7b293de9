import { utf8Encode } from '../../bytes/text.js';
import { ConnectionClosedError } from '../../errors.js';
import { ChunkStream } from './chunk-stream.js';
import type { Frame } from './frame.js';
import type { ServerAction, ServerReactor, ServerReactorOptions } from './server-reactor.js';

/** A command as a handler sees it. */
export interface IncomingCommand {
  /** Command name (UTF-8). */
  name: string;
  nameBytes: Uint8Array;
  /** Arguments by name (null-prototype object), keyed by their bytes as in `CommandRequest.args` (`argumentKey`). */
  args: Record<string, Uint8Array>;
  /** The command data, when buffered (default); `null` when there is none or it is streamed. */
  data: Uint8Array | null;
  /** The command data as it arrives, with the `streamData` option; `null` otherwise. */
  stream: AsyncIterable<Uint8Array> | null;
  /** Aborted when the connection or request goes away. */
  signal: AbortSignal;
}

/**
 * What a handler returns: the whole response (bytes or UTF-8 text; nothing means an empty
 * response), or the response as an (async) iterable of chunks, sent as they come.
 */
export type CommandResult = Uint8Array | string | null | undefined | void | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/** Runs a command. Throwing sends an application error-response frame with the error's message. */
export type CommandHandler = (command: IncomingCommand) => CommandResult | Promise<CommandResult>;

/** Options shared by the socket and HTTP servers. */
export interface FrameServerOptions extends Omit<ServerReactorOptions, 'deferOutput'> {
  /** Largest frame payload accepted from clients, checked from the header. Default 1 MiB. */
  maxFrameLength?: number;
  /** Streamed command data buffered before reading from the peer pauses. Default 1 MiB. */
  dataHighWaterMark?: number;
  /** Called with errors thrown by handlers (they are also sent as application errors). */
  onHandlerError?: (err: unknown, command: IncomingCommand) => void;
  /**
   * Most commands received and waiting for their turn (commands run one at a time, and a command
   * is done once its response was written). When they are this many, the server stops reading
   * until one is done: a client that pipelines without reading its responses meets backpressure
   * instead of filling the server's memory. Default 16.
   */
  maxQueuedCommands?: number;
  /** Called each time reading stops because `maxQueuedCommands` commands wait (for logs and metrics). */
  onQueueFull?: (queued: number) => void;
}

type Job = { command: IncomingCommand };

/**
 * Driver-side glue between a `ServerReactor`, a handler and an output function: runs commands one
 * at a time in arrival order (so responses keep the order of requests), feeds their results back
 * to the reactor and sends the frames it asks for. Used by the socket and HTTP servers.
 */
export class CommandRunner {
  private readonly jobs: Job[] = [];
  private running = false;
  private idleWaiters: (() => void)[] = [];
  private streaming: ChunkStream | undefined;
  private outChain: Promise<void> = Promise.resolve();
  private sendFailure: unknown = undefined;
  private readonly controller = new AbortController();
  private readonly maxQueued: number;
  private spaceWaiters: (() => void)[] = [];

  constructor(
    private readonly reactor: ServerReactor,
    private readonly handler: CommandHandler,
    private readonly send: (frames: Frame[]) => Promise<void> | void,
    private readonly options: FrameServerOptions = {},
  ) {
    this.maxQueued = Math.max(1, options.maxQueuedCommands ?? 16);
  }

  /** Commands received and not yet done (the running one included). */
  get queued(): number {
    return this.jobs.length + (this.running ? 1 : 0);
  }

  /** Aborted when `abort` is called (connection lost). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * Processes one received frame. Resolves when the frame is handled (after backpressure on
   * streamed data); returns the protocol error message when the frame broke the protocol.
   */
  async onFrame(f: Frame): Promise<string | undefined> {
    const action = this.reactor.onFrame(f);
    switch (action.type) {
      case 'runCommand': {
        const c = action.command;
        let stream: ChunkStream | null = null;
        if (c.streaming) {
          stream = new ChunkStream(this.options.dataHighWaterMark ?? 1024 * 1024);
          this.streaming = stream;
        }
        this.enqueue({ command: { name: c.name, nameBytes: c.nameBytes, args: c.args, data: c.data, stream, signal: this.controller.signal } });
        // The reader waits for the writer: no more frames until a queued command is done.
        if (this.jobs.length >= this.maxQueued && !c.streaming) await this.space();
        return undefined;
      }
      case 'commandData': {
        const s = this.streaming;
        if (!s) return undefined;
        const more = s.push(action.chunk);
        if (action.eos) {
          s.end();
          this.streaming = undefined;
        } else if (!more) await s.ready({ signal: this.controller.signal });
        return undefined;
      }
      case 'error':
        this.streaming?.fail(action.error);
        this.streaming = undefined;
        return action.message;
      default:
        this.output(action);
        return undefined;
    }
  }

  /** Signals end of input (releases deferred output). A streamed command left incomplete fails. */
  inputEnded(): void {
    this.streaming?.fail(new ConnectionClosedError('input ended before the end of the command data'));
    this.streaming = undefined;
    this.output(this.reactor.onInputEof());
  }

  /** Aborts running handlers (their `signal` fires) and fails streamed data. */
  abort(reason: unknown): void {
    this.streaming?.fail(reason);
    this.streaming = undefined;
    this.controller.abort(reason);
    this.wakeSpace();
  }

  /** Resolves when fewer than `maxQueuedCommands` commands wait, or the runner was aborted. */
  private space(): Promise<void> {
    if (this.jobs.length < this.maxQueued || this.controller.signal.aborted) return Promise.resolve();
    this.options.onQueueFull?.(this.queued);
    return new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
  }

  private wakeSpace(): void {
    const w = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const f of w) f();
  }

  /** Resolves when every queued command has run and its output has been sent. */
  async idle(): Promise<void> {
    if (this.running || this.jobs.length > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.outChain;
    if (this.sendFailure !== undefined) throw this.sendFailure;
  }

  private enqueue(job: Job): void {
    this.jobs.push(job);
    if (!this.running) void this.work();
  }

  private async work(): Promise<void> {
    this.running = true;
    while (this.jobs.length > 0) {
      const job = this.jobs.shift()!;
      await this.runJob(job);
      if (this.jobs.length < this.maxQueued) this.wakeSpace();
    }
    this.running = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async runJob({ command }: Job): Promise<void> {
    try {
      if (this.controller.signal.aborted) return;
      const result = await this.handler(command);
      if (result === null || result === undefined) this.output(this.reactor.onBytesResponseReady(new Uint8Array(0)));
      else if (typeof result === 'string') this.output(this.reactor.onBytesResponseReady(utf8Encode(result)));
      else if (result instanceof Uint8Array) this.output(this.reactor.onBytesResponseReady(result));
      else {
        let prev: Uint8Array | undefined;
        for await (const raw of result as AsyncIterable<Uint8Array | string>) {
          const chunk = typeof raw === 'string' ? utf8Encode(raw) : raw;
          if (prev !== undefined) {
            this.output(this.reactor.onBytesResponseChunk(prev, false));
            await this.outChain;
          }
          prev = chunk;
        }
        this.output(this.reactor.onBytesResponseChunk(prev ?? new Uint8Array(0), true));
      }
    } catch (err) {
      this.options.onHandlerError?.(err, command);
      const message = err instanceof Error ? err.message : String(err);
      this.output(this.reactor.onApplicationError(message || 'command failed'));
    } finally {
      if (command.stream instanceof ChunkStream) command.stream.discard();
    }
    await this.outChain;
  }

  private output(action: ServerAction): void {
    if (action.type !== 'sendFrames') return;
    const frames = action.frames;
    this.outChain = this.outChain.then(async () => {
      if (this.sendFailure !== undefined) return;
      try {
        await this.send(frames);
      } catch (err) {
        this.sendFailure = err;
        this.abort(err);
      }
    });
  }
}
