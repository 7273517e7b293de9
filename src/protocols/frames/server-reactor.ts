import { utf8Decode } from '../../bytes/text.js';
import { argumentKey } from './argument-names.js';
import {
  DEFAULT_MAX_FRAME_SIZE,
  FRAME_HEADER_SIZE,
  FLAG_COMMAND_ARGUMENT_CONTINUATION,
  FLAG_COMMAND_ARGUMENT_EOA,
  FLAG_COMMAND_DATA_CONTINUATION,
  FLAG_COMMAND_DATA_EOS,
  FLAG_COMMAND_NAME_EOS,
  FLAG_COMMAND_NAME_HAVE_ARGS,
  FLAG_COMMAND_NAME_HAVE_DATA,
  FRAME_TYPE_COMMAND_ARGUMENT,
  FRAME_TYPE_COMMAND_DATA,
  FRAME_TYPE_COMMAND_NAME,
  frameTypeName,
} from './constants.js';
import { FrameProtocolError } from './errors.js';
import type { Frame } from './frame.js';
import { ARGUMENT_HEADER_SIZE } from './requests.js';
import { bytesResponseFrames, errorFrame, responseChunkFrames } from './responses.js';

/** A command request assembled from received frames. */
export interface CommandRequest {
  /** The command name, decoded as UTF-8. */
  name: string;
  /** The command name as sent. */
  nameBytes: Uint8Array;
  /**
   * Arguments by name, in a null-prototype object. Names are keyed by their bytes: the UTF-8 text
   * when valid, else with Python's `surrogateescape` for the bytes that are not (`argumentKey`), so
   * distinct names never collide; `argumentNameBytes(key)` gives the bytes back.
   */
  args: Record<string, Uint8Array>;
  /**
   * The command data when buffered (the default); `null` when the command has no data or when it
   * is streamed (`streaming`).
   */
  data: Uint8Array | null;
  /** True when the data follows in `commandData` actions (reactor option `streamData`). */
  streaming: boolean;
}

/** States of the server reactor. */
export type ServerState = 'idle' | 'command-receiving-args' | 'command-arg-continuation' | 'command-receiving-data' | 'errored';

/**
 * What the consumer of a `ServerReactor` should do next (Mercurial's action tuples), discriminated
 * by `type`:
 * - `runCommand`: run `command`; with `command.streaming`, its data follows in `commanddata`.
 * - `commandData`: the next chunk of the streamed data of the command being received; `eos` on the last.
 * - `wantFrame`: nothing to do until another frame arrives.
 * - `sendFrames`: write `frames` to the peer, in order.
 * - `error`: the peer broke the protocol; the reactor is now errored. Send
 *   `errorFrame(message, { protocol: true })` if the transport allows, then stop reading.
 * - `noop`: nothing to do.
 */
export type ServerAction =
  | { type: 'runCommand'; command: CommandRequest }
  | { type: 'commandData'; chunk: Uint8Array; eos: boolean }
  | { type: 'wantFrame'; state: ServerState }
  | { type: 'sendFrames'; frames: Frame[] }
  | { type: 'error'; message: string; error: FrameProtocolError }
  | { type: 'noop' };

/** Options of `ServerReactor`. */
export interface ServerReactorOptions {
  /**
   * Hold every output frame until `onInputEof()` (half-duplex transports such as HTTP), then
   * release them all in order. Default false: frames are to be sent as soon as they are ready.
   */
  deferOutput?: boolean;
  /**
   * Start commands with data as soon as their arguments are complete, delivering the data in
   * `commandData` actions. Default false: data is buffered and the command runs after its last frame.
   */
  streamData?: boolean;
  /** Largest payload of an output frame. Default 32768. */
  maxFrameSize?: number;
  /** Largest buffered command data, checked before buffering. Default 64 MiB. */
  maxDataSize?: number;
  /** Largest total size of a command's argument names and values. Default 1 MiB. */
  maxArgumentsSize?: number;
  /** Most arguments per command. Default 1024. */
  maxArguments?: number;
}

/**
 * The server side of Mercurial's frame protocol, as a sans-I/O state machine (Mercurial's
 * `serverreactor`). Tell it what happened (`onFrame`, `onBytesResponseReady`,
 * `onApplicationError`, `onInputEof`); each call returns the action to take. It performs no I/O
 * and runs no commands itself.
 *
 * Beyond Mercurial: the next command is accepted after one completes, argument values may span
 * frames (`continuation`), data may be streamed (`streamData`), application errors are deferred
 * like every other output, and sizes are bounded.
 */
export class ServerReactor {
  private readonly deferOutput: boolean;
  private readonly streamData: boolean;
  private readonly maxFrameSize: number;
  private readonly maxDataSize: number;
  private readonly maxArgumentsSize: number;
  private readonly maxArguments: number;
  private stateValue: ServerState = 'idle';
  private buffered: Frame[] = [];
  private bufferedSize = 0;
  private inputEnded = false;
  private errorMessage: string | undefined;

  private activeName: Uint8Array = new Uint8Array(0);
  private activeArgs: Record<string, Uint8Array> = Object.create(null);
  private argCount = 0;
  private argBytes = 0;
  private expectingData = false;
  private dataChunks: Uint8Array[] = [];
  private dataSize = 0;
  private argName = '';
  private argDeclared = 0;
  private argChunks: Uint8Array[] = [];
  private argReceived = 0;

  constructor(options: ServerReactorOptions = {}) {
    this.deferOutput = options.deferOutput ?? false;
    this.streamData = options.streamData ?? false;
    this.maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    this.maxDataSize = options.maxDataSize ?? 64 * 1024 * 1024;
    this.maxArgumentsSize = options.maxArgumentsSize ?? 1024 * 1024;
    this.maxArguments = options.maxArguments ?? 1024;
  }

  /** The current state. */
  get state(): ServerState {
    return this.stateValue;
  }

  /** Output frames held back in deferred-output mode. */
  get bufferedFrameCount(): number {
    return this.buffered.length;
  }

  /** Bytes of the output frames held back in deferred-output mode (headers included). */
  get bufferedBytes(): number {
    return this.bufferedSize;
  }

  /** Processes a frame received from the client. */
  onFrame(f: Frame): ServerAction {
    switch (this.stateValue) {
      case 'idle':
        return this.onIdle(f);
      case 'command-receiving-args':
        return this.onArgs(f);
      case 'command-arg-continuation':
        return this.onArgContinuation(f);
      case 'command-receiving-data':
        return this.onData(f);
      case 'errored':
        return { type: 'error', message: 'server already errored', error: new FrameProtocolError(`server already errored: ${this.errorMessage}`, { origin: 'remote' }) };
    }
  }

  /** @deprecated use `onFrame`. */
  onFrameRecv(f: Frame): ServerAction {
    return this.onFrame(f);
  }

  /** Signals that a command's whole response is ready; it is split at `maxFrameSize`. */
  onBytesResponseReady(data: Uint8Array): ServerAction {
    return this.output(bytesResponseFrames(data, this.maxFrameSize));
  }

  /**
   * Signals one chunk of a streamed response; `eos` on the last one (an empty chunk with `eos`
   * ends the response with an empty frame).
   */
  onBytesResponseChunk(chunk: Uint8Array, eos: boolean): ServerAction {
    return this.output(responseChunkFrames(chunk, eos, this.maxFrameSize));
  }

  /** Signals that a command failed; answers with an application error-response frame. */
  onApplicationError(message: Uint8Array | string): ServerAction {
    return this.output([errorFrame(message, { application: true }, this.maxFrameSize)]);
  }

  /**
   * Signals end of input: no more frames will be received. In deferred-output mode, returns the
   * held frames in order; output after this point is sent at once.
   */
  onInputEof(): ServerAction {
    this.inputEnded = true;
    if (!this.deferOutput || this.buffered.length === 0) return { type: 'noop' };
    const frames = this.buffered;
    this.buffered = [];
    this.bufferedSize = 0;
    return { type: 'sendFrames', frames };
  }

  private output(frames: Frame[]): ServerAction {
    if (frames.length === 0) return { type: 'noop' };
    if (this.deferOutput && !this.inputEnded) {
      for (const f of frames) {
        this.buffered.push(f);
        this.bufferedSize += FRAME_HEADER_SIZE + f.payload.length;
      }
      return { type: 'noop' };
    }
    return { type: 'sendFrames', frames };
  }

  private fail(message: string): ServerAction {
    this.stateValue = 'errored';
    this.errorMessage = message;
    this.dataChunks = [];
    this.argChunks = [];
    return { type: 'error', message, error: new FrameProtocolError(message, { origin: 'remote' }) };
  }

  private unexpected(expected: string, f: Frame): ServerAction {
    return this.fail(`expected ${expected} frame; got ${f.type} (${frameTypeName(f.type)})`);
  }

  private wantFrame(): ServerAction {
    return { type: 'wantFrame', state: this.stateValue };
  }

  private runCommand(data: Uint8Array | null, streaming: boolean): ServerAction {
    const command: CommandRequest = { name: utf8Decode(this.activeName), nameBytes: this.activeName, args: this.activeArgs, data, streaming };
    this.activeArgs = Object.create(null);
    this.dataChunks = [];
    return { type: 'runCommand', command };
  }

  private onIdle(f: Frame): ServerAction {
    if (f.type !== FRAME_TYPE_COMMAND_NAME) return this.unexpected('command', f);
    this.activeName = f.payload;
    this.activeArgs = Object.create(null);
    this.argCount = 0;
    this.argBytes = 0;
    this.dataChunks = [];
    this.dataSize = 0;
    const haveArgs = (f.flags & FLAG_COMMAND_NAME_HAVE_ARGS) !== 0;
    const haveData = (f.flags & FLAG_COMMAND_NAME_HAVE_DATA) !== 0;
    if (f.flags & FLAG_COMMAND_NAME_EOS) {
      if (haveArgs || haveData) return this.fail('command frame has eos together with have-args or have-data');
      return this.runCommand(null, false);
    }
    this.expectingData = haveData;
    if (haveArgs) {
      this.stateValue = 'command-receiving-args';
      return this.wantFrame();
    }
    if (haveData) return this.startData();
    return this.fail('missing frame flags on command frame');
  }

  private startData(): ServerAction {
    this.stateValue = 'command-receiving-data';
    if (this.streamData) return this.runCommand(null, true);
    return this.wantFrame();
  }

  private onArgs(f: Frame): ServerAction {
    if (f.type !== FRAME_TYPE_COMMAND_ARGUMENT) return this.unexpected('command argument', f);
    const p = f.payload;
    if (p.length < ARGUMENT_HEADER_SIZE) return this.fail(`malformed argument frame: ${p.length} bytes is shorter than the argument header`);
    const nameSize = p[0]! | (p[1]! << 8);
    const valueSize = p[2]! | (p[3]! << 8);
    if (p.length < ARGUMENT_HEADER_SIZE + nameSize) return this.fail('malformed argument frame: partial argument name');
    if (this.argCount >= this.maxArguments) return this.fail(`too many arguments (limit ${this.maxArguments})`);
    if (this.argBytes + nameSize + valueSize > this.maxArgumentsSize) return this.fail(`arguments exceed the limit of ${this.maxArgumentsSize} bytes`);
    // Keyed by the name's bytes (argumentKey is one-to-one), as the original does.
    const name = argumentKey(p, ARGUMENT_HEADER_SIZE, ARGUMENT_HEADER_SIZE + nameSize);
    if (Object.hasOwn(this.activeArgs, name)) return this.fail(`duplicate argument ${JSON.stringify(name)}`);
    const value = p.subarray(ARGUMENT_HEADER_SIZE + nameSize);
    this.argCount++;
    this.argBytes += nameSize + valueSize;
    if (f.flags & FLAG_COMMAND_ARGUMENT_CONTINUATION) {
      if (f.flags & FLAG_COMMAND_ARGUMENT_EOA) return this.fail('malformed argument frame: eoa on a frame flagged continuation');
      if (value.length > valueSize) return this.fail(`malformed argument frame: argument value longer than the declared ${valueSize} bytes`);
      this.argName = name;
      this.argDeclared = valueSize;
      this.argChunks = [value];
      this.argReceived = value.length;
      this.stateValue = 'command-arg-continuation';
      return this.wantFrame();
    }
    if (value.length < valueSize) return this.fail('malformed argument frame: partial argument value');
    if (value.length > valueSize) return this.fail(`malformed argument frame: argument value longer than the declared ${valueSize} bytes`);
    this.activeArgs[name] = value;
    return this.afterArgument(f.flags);
  }

  private onArgContinuation(f: Frame): ServerAction {
    if (f.type !== FRAME_TYPE_COMMAND_ARGUMENT) return this.unexpected('command argument continuation', f);
    const received = this.argReceived + f.payload.length;
    if (received > this.argDeclared) return this.fail(`malformed argument frame: argument value longer than the declared ${this.argDeclared} bytes`);
    this.argChunks.push(f.payload);
    this.argReceived = received;
    if (f.flags & FLAG_COMMAND_ARGUMENT_CONTINUATION) {
      if (f.flags & FLAG_COMMAND_ARGUMENT_EOA) return this.fail('malformed argument frame: eoa on a frame flagged continuation');
      return this.wantFrame();
    }
    if (received !== this.argDeclared) return this.fail('malformed argument frame: partial argument value');
    const value = new Uint8Array(received);
    let o = 0;
    for (const c of this.argChunks) {
      value.set(c, o);
      o += c.length;
    }
    this.argChunks = [];
    this.activeArgs[this.argName] = value;
    this.stateValue = 'command-receiving-args';
    return this.afterArgument(f.flags);
  }

  private afterArgument(flags: number): ServerAction {
    if (!(flags & FLAG_COMMAND_ARGUMENT_EOA)) return this.wantFrame();
    if (this.expectingData) return this.startData();
    this.stateValue = 'idle';
    return this.runCommand(null, false);
  }

  private onData(f: Frame): ServerAction {
    if (f.type !== FRAME_TYPE_COMMAND_DATA) return this.unexpected('command data', f);
    const cont = (f.flags & FLAG_COMMAND_DATA_CONTINUATION) !== 0;
    const eos = (f.flags & FLAG_COMMAND_DATA_EOS) !== 0;
    if (!cont && !eos) return this.fail('command data frame without flags');
    if (cont && eos) return this.fail('command data frame flagged both continuation and eos');
    if (this.streamData) {
      if (eos) this.stateValue = 'idle';
      return { type: 'commandData', chunk: f.payload, eos };
    }
    if (this.dataSize + f.payload.length > this.maxDataSize) return this.fail(`command data exceeds the limit of ${this.maxDataSize} bytes`);
    if (f.payload.length > 0) this.dataChunks.push(f.payload);
    this.dataSize += f.payload.length;
    if (cont) return this.wantFrame();
    const data = new Uint8Array(this.dataSize);
    let o = 0;
    for (const c of this.dataChunks) {
      data.set(c, o);
      o += c.length;
    }
    this.stateValue = 'idle';
    return this.runCommand(data, false);
  }
}
