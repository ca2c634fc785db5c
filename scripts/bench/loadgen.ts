/**
 * Load generator for bench-ingest: ONE Node process publishing N RTMP streams from one pre-encoded
 * FLV with our test publisher (test/helpers/rtmp-publisher.ts), each paced in real time by its tag
 * timestamps (`sendTags(tags, { realtime: true })`) and looped with the timestamps offset by the
 * file's duration so they keep increasing. Starts are staggered over `staggerMs`.
 *
 * Run by bench-ingest as `node --import tsx scripts/bench/loadgen.ts '<json options>'` with an IPC
 * channel; it reports each publish outcome and its counters over IPC, and stops (unpublish, close)
 * on SIGTERM, on a 'stop' message, when its parent goes away, or after `maxSeconds` at the latest.
 */
import { readFileSync } from 'node:fs';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { readFlv } from '../../src/media/flv/flv-file.js';
import type { FlvTag } from '../../src/media/types.js';
import { PublishRefused, RtmpTestPublisher } from '../../test/helpers/rtmp-publisher.js';

export interface LoadgenOptions {
  port: number;
  app: string;
  flv: string;
  streams: Array<{ id: string; key: string }>;
  staggerMs: number;
  maxSeconds: number;
  /** Our outgoing RTMP chunk size (ffmpeg announces 4096 when it publishes). */
  chunkSize: number;
}

export type LoadgenMessage =
  | { event: 'published'; stream: string; at: number; code: string }
  | { event: 'refused'; stream: string; at: number; code: string; description: string }
  | { event: 'error'; stream: string; at: number; message: string }
  | { event: 'closed'; stream: string; at: number; byUs: boolean }
  | { event: 'stats'; at: number; streams: Array<{ stream: string; tags: number; bytes: number; loops: number }>; eventLoopUtilization: number }
  | { event: 'done'; at: number };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const isSequenceHeader = (t: FlvTag) => (t.type === 9 || t.type === 8) && t.body[1] === 0 && (t.type === 8 ? t.body[0]! >> 4 === 10 : (t.body[0]! & 0x0f) === 7);
const isEndOfSequence = (t: FlvTag) => t.type === 9 && (t.body[0]! & 0x0f) === 7 && t.body[1] === 2;

/**
 * The file as loops: loop 0 is the file as is (metadata, sequence headers, media); later loops only
 * the media, every timestamp + k·period. period = last video timestamp + one frame; audio that would
 * run past it is left out, so timestamps never go back at the seam.
 */
function loopPlan(tags: readonly FlvTag[]): { first: FlvTag[]; media: FlvTag[]; periodMs: number } {
  const video = tags.filter((t) => t.type === 9 && !isSequenceHeader(t) && !isEndOfSequence(t));
  const frameMs = video.length > 1 ? Math.round((video.at(-1)!.timestamp - video[0]!.timestamp) / (video.length - 1)) : 40;
  const periodMs = (video.at(-1)?.timestamp ?? 0) + frameMs;
  const audioFrameMs = 22; // AAC: 1024 samples at 48 kHz = 21.3 ms
  const keep = (t: FlvTag) => !isEndOfSequence(t) && !(t.type === 8 && !isSequenceHeader(t) && t.timestamp + audioFrameMs > periodMs);
  const first = tags.filter(keep);
  const media = first.filter((t) => t.type !== 18 && !isSequenceHeader(t));
  return { first, media, periodMs };
}

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? '{}') as LoadgenOptions;
  const send = (m: LoadgenMessage) => {
    if (process.connected) process.send!(m);
  };
  const { tags } = readFlv(readFileSync(o.flv));
  const plan = loopPlan(tags);
  const maxLoops = Math.ceil((o.maxSeconds * 1000) / plan.periodMs) + 1;
  const shifted = (k: number): FlvTag[] => (k === 0 ? plan.first : plan.media.map((t) => ({ type: t.type, timestamp: t.timestamp + k * plan.periodMs, body: t.body })));
  const loops = new Map<number, FlvTag[]>();
  const loopTags = (k: number) => {
    let l = loops.get(k);
    if (!l) {
      l = shifted(k);
      loops.set(k, l);
      loops.delete(k - 3); // every stream is within a loop or two of the others
    }
    return l;
  };

  // How busy the event loop was since the last 'mark' (1 = always busy: pacing would slip). No
  // monitorEventLoopDelay: its timer wakes the process every 10 ms, which costs ~2 % of a core on
  // this kind of VM, more than the publishing itself at small N.
  let mark: EventLoopUtilization = performance.eventLoopUtilization();
  let stopping = false;
  const pubs = new Map<string, RtmpTestPublisher>();
  const counters = new Map<string, { tags: number; bytes: number; loops: number }>();

  async function runStream(i: number): Promise<void> {
    const s = o.streams[i]!;
    await sleep((i * o.staggerMs) / Math.max(1, o.streams.length));
    if (stopping) return;
    const c = { tags: 0, bytes: 0, loops: 0 };
    counters.set(s.id, c);
    let p: RtmpTestPublisher;
    try {
      p = await RtmpTestPublisher.open({ port: o.port, app: o.app, chunkSize: o.chunkSize });
      pubs.set(s.id, p);
      await p.connect();
      const st = await p.publish(`${s.id}?key=${encodeURIComponent(s.key)}`);
      send({ event: 'published', stream: s.id, at: Date.now(), code: st.code });
    } catch (err) {
      if (err instanceof PublishRefused) send({ event: 'refused', stream: s.id, at: Date.now(), code: err.status.code, description: err.status.description });
      else send({ event: 'error', stream: s.id, at: Date.now(), message: String(err) });
      return;
    }
    p.closed.then(() => send({ event: 'closed', stream: s.id, at: Date.now(), byUs: stopping }), () => undefined);
    const t0 = Date.now();
    for (let k = 0; k < maxLoops && !stopping && !p.socket.destroyed; k++) {
      // Loop k starts when its first timestamp is due on the stream's own clock (no drift across loops).
      const wait = t0 + k * plan.periodMs - Date.now();
      if (wait > 0) await sleep(wait);
      const l = loopTags(k);
      c.tags += await p.sendTags(l, { realtime: true });
      c.bytes += l.reduce((a, t) => a + t.body.length, 0);
      c.loops++;
    }
  }

  const stats = (): LoadgenMessage => ({
    event: 'stats', at: Date.now(),
    streams: [...counters].map(([stream, c]) => ({ stream, ...c })),
    eventLoopUtilization: performance.eventLoopUtilization(mark).utilization,
  });

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      stopping = true;
      send(stats());
      await Promise.race([Promise.allSettled([...pubs.values()].map((p) => p.unpublish())), sleep(3000)]);
      for (const p of pubs.values()) p.socket.destroy();
      send({ event: 'done', at: Date.now() });
      process.exit(0);
    })();
    return stopped;
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  process.on('disconnect', () => void stop());
  process.on('message', (m: unknown) => {
    if (m === 'stop') void stop();
    else if (m === 'stats') send(stats());
    else if (m === 'mark') mark = performance.eventLoopUtilization();
  });
  setTimeout(() => void stop(), o.maxSeconds * 1000).unref();
  await Promise.allSettled(o.streams.map((_s, i) => runStream(i)));
  await stop();
}

await main();
