import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { renderKey, withCollisionSuffix } from '../appender/key-template.js';
import { ObjectWriter } from '../appender/object-writer.js';
import type { StreamConfig } from '../config/index.js';
import { Fmp4Splitter, type ContainerOutput } from '../container/index.js';
import type { PublishInfo, PublishSink } from '../ingest/rtmp/rtmp-ingest.js';
import type { GatewayMetrics } from '../metrics/metrics.js';
import { Remuxer, type RemuxerExit } from '../remux/remuxer.js';
import type { AppendableStore } from '../store/types.js';
import type { Logger } from '../util/logger.js';

export interface ObjectSummary {
  key: string;
  bytes: number;
  crc64: string;
  sha256: string;
  fragments: number;
  openedAt: string;
  error?: string;
}

export interface SessionSummary {
  id: string;
  stream: string;
  startedAt: string;
  endedAt: string | null;
  /** SHA-256 and length of everything the remuxer wrote to stdout. */
  remuxSha256: string;
  remuxBytes: number;
  ingestBytes: number;
  ffmpegExit: RemuxerExit | null;
  objects: ObjectSummary[];
}

export interface PublishSessionOptions {
  info: PublishInfo;
  stream: StreamConfig;
  store: AppendableStore;
  metrics: GatewayMetrics;
  logger: Logger;
  ffmpegPath: string;
}

export interface PublishSessionEvents {
  finished: [summary: SessionSummary];
}

const MAX_KEY_COLLISIONS = 100;

/**
 * One publish, end to end: FLV tap → ffmpeg (-c copy → fMP4) → splitter → object writer.
 * Each publish opens a new object; a new init segment mid-stream (codec change) opens another,
 * since an object must play on its own.
 */
export class PublishSession extends EventEmitter<PublishSessionEvents> {
  private readonly o: PublishSessionOptions;
  private readonly log: Logger;
  private readonly remuxer: Remuxer;
  private readonly splitter = new Fmp4Splitter();
  private readonly remuxSha = createHash('sha256');
  private chain: Promise<void> = Promise.resolve();
  private writer: ObjectWriter | undefined;
  private currentInit: Buffer | undefined;
  private readonly objects: Array<{ writer: ObjectWriter; openedAt: Date; fragments: number }> = [];
  private readonly summary: SessionSummary;
  private readonly finishedPromise: Promise<SessionSummary>;

  constructor(o: PublishSessionOptions) {
    super();
    this.o = o;
    const stream = o.stream.id;
    this.log = o.logger.child({ stream, publish: o.info.id });
    this.summary = {
      id: o.info.id, stream, startedAt: new Date(o.info.startedAt).toISOString(), endedAt: null,
      remuxSha256: '', remuxBytes: 0, ingestBytes: 0, ffmpegExit: null, objects: [],
    };
    this.remuxer = new Remuxer({
      ffmpegPath: o.ffmpegPath, inputFormat: 'flv', fragmentDurationMs: o.stream.fragmentDurationMs ?? undefined,
    });
    this.log.info({ remote: o.info.remote, pid: this.remuxer.pid, args: this.remuxer.args.join(' ') }, 'publish started; remuxer spawned');
    o.metrics.streamUp.set({ stream }, 1);
    this.remuxer.on('stderr', (line) => this.log.warn({ ffmpeg: line }, 'ffmpeg'));
    this.remuxer.on('error', (err) => this.log.error({ err }, 'remuxer failed'));
    this.remuxer.on('data', (chunk, at) => this.onRemuxData(chunk, at));
    this.finishedPromise = this.remuxer.done().then((exit) => this.finish(exit));
  }

  /** The FLV sink the ingest writes the publish into. */
  sink(): PublishSink {
    return {
      write: (buf) => {
        this.summary.ingestBytes += buf.length;
        this.o.metrics.ingestBytes.inc({ stream: this.o.stream.id }, buf.length);
        this.remuxer.write(buf);
      },
      end: () => void this.remuxer.stop(),
    };
  }

  /** Stop now (gateway shutdown): ends ffmpeg's input so it flushes, then drains the appends. */
  async stop(): Promise<SessionSummary> {
    await this.remuxer.stop();
    return this.finishedPromise;
  }

  finished(): Promise<SessionSummary> {
    return this.finishedPromise;
  }

  private onRemuxData(chunk: Buffer, receivedAt: number): void {
    this.remuxSha.update(chunk);
    this.summary.remuxBytes += chunk.length;
    this.o.metrics.remuxBytes.inc({ stream: this.o.stream.id }, chunk.length);
    let outputs: ContainerOutput[];
    try {
      outputs = this.splitter.push(chunk, receivedAt);
    } catch (err) {
      this.log.error({ err }, 'remuxer output is not fragmented MP4; stopping this publish');
      void this.remuxer.stop();
      return;
    }
    this.enqueue(outputs);
  }

  private enqueue(outputs: ContainerOutput[]): void {
    if (outputs.length === 0) return;
    this.chain = this.chain.then(async () => {
      for (const out of outputs) await this.handle(out);
    });
  }

  private async handle(out: ContainerOutput): Promise<void> {
    if (out.type === 'init') {
      if (this.writer && this.currentInit?.equals(out.bytes)) return; // ffmpeg repeats nothing today; be safe
      if (this.writer) this.log.info({ key: this.writer.key }, 'init segment changed; opening a new object');
      this.currentInit = out.bytes;
      await this.openObject();
      this.writer!.write({ bytes: out.bytes, receivedAt: Date.now() });
      return;
    }
    if (!this.writer) {
      this.log.error({ bytes: out.bytes.length }, 'media before any init segment; dropped');
      this.o.metrics.lostBytes.inc({ stream: this.o.stream.id, reason: 'no-init' }, out.bytes.length);
      return;
    }
    if (out.type === 'fragment') {
      this.o.metrics.fragmentArrived(this.o.stream.id, out.receivedAt);
      this.objects[this.objects.length - 1]!.fragments++;
      this.writer.write({ bytes: out.bytes, receivedAt: out.receivedAt });
    } else {
      this.writer.write({ bytes: out.bytes, receivedAt: Date.now() });
    }
  }

  private async openObject(): Promise<void> {
    const { stream, store, metrics } = this.o;
    const openedAt = new Date();
    const base = renderKey(stream.keyTemplate, { stream: stream.id, date: openedAt, seq: this.objects.length });
    let key = base;
    for (let n = 1; (await store.head(key)) !== null; n++) {
      if (n > MAX_KEY_COLLISIONS) throw new Error(`no free key near ${base}`);
      key = withCollisionSuffix(base, n);
    }
    const writer = new ObjectWriter(store, key, { contentType: stream.contentType });
    writer.on('appended', (info) => metrics.appended(stream.id, info));
    writer.on('failed', (err) => {
      const code = (err as { code?: string }).code ?? 'unknown';
      metrics.appendErrors.inc({ stream: stream.id, code });
      this.log.error({ err, key }, 'append failed; this object stops here (retries and the spool come with the reliability core)');
    });
    metrics.objects.inc({ stream: stream.id });
    metrics.objectPosition.set({ stream: stream.id }, 0);
    this.writer = writer;
    this.objects.push({ writer, openedAt, fragments: 0 });
    this.log.info({ key }, 'object opened');
  }

  private async finish(exit: RemuxerExit): Promise<SessionSummary> {
    try {
      this.enqueue(this.splitter.flush());
    } catch (err) {
      this.log.error({ err }, 'remuxer output ended inside a box; the partial box is not appended');
    }
    await this.chain.catch((err: unknown) => this.log.error({ err }, 'pipeline failed'));
    for (const o of this.objects) await o.writer.drain();
    const stream = this.o.stream.id;
    if (!exit.clean) this.o.metrics.ffmpegRestarts.inc({ stream, reason: exit.signal ? `signal-${exit.signal}` : `exit-${exit.code}` });
    for (const o of this.objects) {
      const lost = o.writer.lostBytes;
      if (lost > 0) this.o.metrics.lostBytes.inc({ stream, reason: 'append-failed' }, lost);
    }
    this.o.metrics.streamEnded(stream);
    Object.assign(this.summary, {
      endedAt: new Date().toISOString(),
      remuxSha256: this.remuxSha.digest('hex'),
      ffmpegExit: exit,
      objects: this.objects.map(({ writer, openedAt, fragments }) => ({
        key: writer.key, bytes: writer.nextPosition, crc64: writer.crc64.toString(), sha256: writer.digest(), fragments,
        openedAt: openedAt.toISOString(), ...(writer.failed ? { error: writer.failed.message } : {}),
      })),
    });
    this.log.info({ ffmpeg: exit, remuxBytes: this.summary.remuxBytes, remuxSha256: this.summary.remuxSha256, objects: this.summary.objects }, 'publish ended');
    this.emit('finished', this.summary);
    return this.summary;
  }
}
