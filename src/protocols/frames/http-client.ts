import { concatBytes } from '../../bytes/text.js';
import { FrameReader } from '../../codecs/codec.js';
import { CodecError } from '../../codecs/errors.js';
import { attachWait, type WaitOptions } from '../../channels/frame-channel.js';
import { ConnectionClosedError, WirekitError } from '../../errors.js';
import { ClientReactor } from './client-reactor.js';
import { DEFAULT_MAX_FRAME_SIZE, FRAMES_MEDIA_TYPE } from './constants.js';
import { FrameCommandError, FrameHttpError, FrameProtocolError, ResponseTooLargeError } from './errors.js';
import { encodeFrame, encodeFrames, frameCodec, type Frame } from './frame.js';
import { commandFrames, commandFramesFrom, type BytesLike, type CommandArgs, type DataSource } from './requests.js';

/** One command of an HTTP exchange. */
export interface HttpCommand {
  name: BytesLike;
  args?: CommandArgs;
  /** Command data; an (async) iterable is streamed as the request body is sent. */
  data?: DataSource;
}

/** The outcome of one command of a batch. */
export type HttpCommandResult = { ok: true; body: Uint8Array } | { ok: false; error: FrameCommandError };

/** Options of `FrameHttpClient`. */
export interface FrameHttpClientOptions {
  /** Largest payload of a request frame. Default 32768. */
  maxFrameSize?: number;
  /** Largest frame payload accepted in the response, checked from the header. Default 1 MiB. */
  maxFrameLength?: number;
  /** Largest total response body. Default 64 MiB. */
  maxResponseSize?: number;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** The fetch implementation. Default the global `fetch`. */
  fetch?: typeof fetch;
}

/**
 * The client of the half-duplex HTTP transport: each exchange is one `POST` whose body holds the
 * request frames of one or more commands; the response body holds their response frames.
 *
 * ```ts
 * const client = new FrameHttpClient('http://127.0.0.1:8080/frames');
 * const body = await client.call('lookup', { key: 'tip' });
 * ```
 */
export class FrameHttpClient {
  readonly url: string;
  private readonly options: FrameHttpClientOptions;

  constructor(url: string | URL, options: FrameHttpClientOptions = {}) {
    this.url = String(url);
    this.options = options;
  }

  /** Runs one command; rejects with `FrameCommandError` when the server answers with an error frame. */
  async call(name: BytesLike, args?: CommandArgs, options: WaitOptions & { data?: DataSource } = {}): Promise<Uint8Array> {
    const [result] = await this.batch([{ name, args, data: options.data }], options);
    if (!result!.ok) throw result!.error;
    return result!.body;
  }

  /**
   * Runs several commands in one exchange. Resolves with one result per command, in order;
   * rejects with `FrameHttpError` on a non-2xx status, `FrameProtocolError` on a malformed
   * response, `ConnectionClosedError` when the response ends early.
   */
  async batch(commands: readonly HttpCommand[], options: WaitOptions = {}): Promise<HttpCommandResult[]> {
    const max = this.options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    const controller = new AbortController();
    let waitError: Error | undefined;
    const cleanup = attachWait('HTTP frame exchange', options, (err) => {
      waitError = err;
      controller.abort(err);
    });
    try {
      const streaming = commands.some((c) => c.data !== undefined && !(c.data instanceof Uint8Array));
      let body: Uint8Array | ReadableStream<Uint8Array>;
      if (!streaming) {
        const frames: Frame[] = [];
        for (const c of commands) frames.push(...commandFrames(c.name, c.args, c.data as Uint8Array | undefined, { maxFrameSize: max }));
        body = encodeFrames(frames);
      } else {
        const gen = (async function* () {
          for (const c of commands) for await (const f of commandFramesFrom(c.name, c.args, c.data, { maxFrameSize: max })) yield encodeFrame(f);
        })();
        body = new ReadableStream<Uint8Array>({
          async pull(ctrl) {
            const { value, done } = await gen.next();
            if (done) ctrl.close();
            else ctrl.enqueue(value);
          },
          async cancel() {
            await gen.return(undefined);
          },
        });
      }
      const doFetch = this.options.fetch ?? fetch;
      let response: Response;
      try {
        response = await doFetch(this.url, {
          method: 'POST',
          headers: { 'content-type': FRAMES_MEDIA_TYPE, accept: FRAMES_MEDIA_TYPE, ...this.options.headers },
          body,
          signal: controller.signal,
          ...(streaming ? { duplex: 'half' } : {}),
        } as RequestInit);
      } catch (err) {
        if (waitError) throw waitError;
        throw new ConnectionClosedError(`HTTP request failed: ${err instanceof Error ? err.message : String(err)}`, err);
      }
      if (!response.ok) {
        const text = (await response.text().catch(() => '')).trim();
        throw new FrameHttpError(response.status, text || response.statusText);
      }
      const type = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
      if (type !== FRAMES_MEDIA_TYPE) {
        await response.body?.cancel();
        throw new FrameProtocolError(`response media type is ${type || 'missing'}, expected ${FRAMES_MEDIA_TYPE}`, { origin: 'remote' });
      }
      return await this.readResponse(response, commands.length);
    } catch (err) {
      if (waitError) throw waitError;
      throw err;
    } finally {
      cleanup();
    }
  }

  private async readResponse(response: Response, count: number): Promise<HttpCommandResult[]> {
    const limit = this.options.maxResponseSize ?? 64 * 1024 * 1024;
    const reactor = new ClientReactor();
    const ids: number[] = [];
    for (let i = 0; i < count; i++) ids.push(reactor.beginRequest());
    const bodies = new Map<number, Uint8Array[]>();
    const results = new Map<number, HttpCommandResult>();
    const reader = new FrameReader(frameCodec({ maxFrameLength: this.options.maxFrameLength ?? 1024 * 1024 }));
    let total = 0;
    const handle = (frames: Frame[]) => {
      for (const f of frames) {
        const ev = reactor.onFrame(f);
        if (ev.type === 'protocolError') throw ev.error;
        if (ev.type === 'error') {
          results.set(ev.id, { ok: false, error: ev.error });
          continue;
        }
        total += ev.chunk.length;
        if (total > limit) throw new ResponseTooLargeError(total, limit);
        const list = bodies.get(ev.id) ?? [];
        list.push(ev.chunk);
        bodies.set(ev.id, list);
        if (ev.eos) results.set(ev.id, { ok: true, body: concatBytes(bodies.get(ev.id)!) });
      }
    };
    try {
      if (response.body) {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) handle(reader.push(chunk));
      }
      handle(reader.end());
    } catch (err) {
      if (err instanceof CodecError && err.code === 'WK_TRUNCATED') throw new ConnectionClosedError(`HTTP response ended inside a frame: ${err.message}`, err);
      if (err instanceof WirekitError) throw err;
      throw new ConnectionClosedError(`reading the HTTP response failed: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    if (reactor.pending.length > 0) throw new ConnectionClosedError(`HTTP response ended with ${reactor.pending.length} of ${count} commands unanswered`);
    return ids.map((id) => results.get(id)!);
  }
}
