/**
 * Fragmented MP4 (as ffmpeg writes it) → FLV, with our own box readers and FLV writer. Exists because
 * Debian's ffmpeg 5.1 cannot write HEVC into FLV: the remux corpus encodes H.265 with libx265 to
 * fMP4 and turns it into the two FLV flavours cameras send — enhanced RTMP (`hvc1` FourCC) and the
 * legacy CDN codec id 12. H.264 works too (legacy codec id 7 or enhanced `avc1`).
 *
 *   npx tsx scripts/mp4-to-flv.ts in.mp4 out.flv [--video enhanced|legacy]
 *
 * Timestamps become FLV milliseconds (rounded; DTS shifted so the earliest is 0, as flvenc does);
 * CTS = round(PTS ms) − DTS ms. Tags are interleaved by DTS. Only what ffmpeg's fragmented output
 * uses is read: moov (tkhd, mdhd, hdlr, stsd → avcC/hvcC/esds, trex) and moof (tfhd, tfdt, trun with
 * default-base-is-moof).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { BoxFieldReader, childBoxes, findChild, type BoxRange } from '../src/container/fmp4/box-reader.js';
import { FlvWriter } from '../src/media/flv/flv-file.js';
import type { FlvTag } from '../src/media/types.js';

export interface Mp4Track {
  id: number;
  kind: 'video' | 'audio' | 'other';
  timescale: number;
  /** Sample entry fourcc: avc1, hvc1, hev1, mp4a… */
  entry: string;
  /** avcC / hvcC payload, or the AudioSpecificConfig from esds. */
  config: Buffer | null;
}

export interface Mp4Sample {
  trackId: number;
  dts: number;
  /** Composition offset (PTS − DTS), track timescale. */
  cto: number;
  duration: number;
  sync: boolean;
  data: Buffer;
}

export interface Mp4Contents {
  tracks: Mp4Track[];
  samples: Mp4Sample[];
}

function need(box: BoxRange | undefined, what: string): BoxRange {
  if (box === undefined) throw new Error(`mp4: missing ${what}`);
  return box;
}

/** Reads tracks and samples of a fragmented MP4 (one init, any number of moof+mdat). */
export function readFragmentedMp4(buf: Buffer): Mp4Contents {
  const top = childBoxes(buf, 0, buf.length, 0);
  const moov = need(top.find((b) => b.type === 'moov'), 'moov');
  const tracks: Mp4Track[] = [];
  const trex = new Map<number, { duration: number; size: number; flags: number }>();
  for (const child of childBoxes(buf, moov.payload, moov.end, 0)) {
    if (child.type === 'trak') tracks.push(readTrak(buf, child));
    if (child.type === 'mvex') {
      for (const t of childBoxes(buf, child.payload, child.end, 0)) {
        if (t.type !== 'trex') continue;
        const r = new BoxFieldReader(buf, t, 0);
        r.fullBox();
        const id = r.u32();
        r.u32();
        trex.set(id, { duration: r.u32(), size: r.u32(), flags: r.u32() });
      }
    }
  }
  const samples: Mp4Sample[] = [];
  const nextDts = new Map<number, number>();
  for (const moof of top.filter((b) => b.type === 'moof')) {
    for (const traf of childBoxes(buf, moof.payload, moof.end, 0).filter((b) => b.type === 'traf')) {
      const kids = childBoxes(buf, traf.payload, traf.end, 0);
      const tfhd = new BoxFieldReader(buf, need(kids.find((b) => b.type === 'tfhd'), 'tfhd'), 0);
      const { flags } = tfhd.fullBox();
      const trackId = tfhd.u32();
      const d = trex.get(trackId) ?? { duration: 0, size: 0, flags: 0 };
      let base = moof.start;
      if (flags & 0x01) base = tfhd.u64();
      if (flags & 0x02) tfhd.u32();
      const defDuration = flags & 0x08 ? tfhd.u32() : d.duration;
      const defSize = flags & 0x10 ? tfhd.u32() : d.size;
      const defFlags = flags & 0x20 ? tfhd.u32() : d.flags;
      let dts = nextDts.get(trackId) ?? 0;
      const tfdt = kids.find((b) => b.type === 'tfdt');
      if (tfdt !== undefined) {
        const r = new BoxFieldReader(buf, tfdt, 0);
        const { version } = r.fullBox();
        dts = version === 1 ? r.u64() : r.u32();
      }
      let dataAt = base;
      for (const trunBox of kids.filter((b) => b.type === 'trun')) {
        const r = new BoxFieldReader(buf, trunBox, 0);
        const { version, flags: tf } = r.fullBox();
        const count = r.u32();
        if (tf & 0x01) dataAt = base + r.i32();
        const firstFlags = tf & 0x04 ? r.u32() : null;
        for (let i = 0; i < count; i++) {
          const duration = tf & 0x100 ? r.u32() : defDuration;
          const size = tf & 0x200 ? r.u32() : defSize;
          let sflags = tf & 0x400 ? r.u32() : defFlags;
          if (i === 0 && firstFlags !== null) sflags = firstFlags;
          const cto = tf & 0x800 ? (version === 1 ? r.i32() : r.u32()) : 0;
          if (dataAt + size > buf.length) throw new Error(`mp4: sample of track ${trackId} runs past the file`);
          samples.push({ trackId, dts, cto, duration, sync: (sflags & 0x10000) === 0, data: buf.subarray(dataAt, dataAt + size) });
          dataAt += size;
          dts += duration;
        }
      }
      nextDts.set(trackId, dts);
    }
  }
  return { tracks, samples };
}

function readTrak(buf: Buffer, trak: BoxRange): Mp4Track {
  const tkhd = new BoxFieldReader(buf, need(findChild(buf, trak, 'tkhd', 0), 'tkhd'), 0);
  const { version } = tkhd.fullBox();
  tkhd.skip(version === 1 ? 16 : 8);
  const id = tkhd.u32();
  const mdia = need(findChild(buf, trak, 'mdia', 0), 'mdia');
  const mdhd = new BoxFieldReader(buf, need(findChild(buf, mdia, 'mdhd', 0), 'mdhd'), 0);
  const { version: mv } = mdhd.fullBox();
  mdhd.skip(mv === 1 ? 16 : 8);
  const timescale = mdhd.u32();
  const hdlr = new BoxFieldReader(buf, need(findChild(buf, mdia, 'hdlr', 0), 'hdlr'), 0);
  hdlr.fullBox();
  hdlr.u32();
  const handler = hdlr.fourcc();
  const kind = handler === 'vide' ? 'video' : handler === 'soun' ? 'audio' : 'other';
  const stbl = need(findChild(buf, need(findChild(buf, mdia, 'minf', 0), 'minf'), 'stbl', 0), 'stbl');
  const stsd = need(findChild(buf, stbl, 'stsd', 0), 'stsd');
  const entry = childBoxes(buf, stsd.payload + 8, stsd.end, 0)[0];
  if (entry === undefined) return { id, kind, timescale, entry: '', config: null };
  // Sample entry fields before the child boxes: 78 bytes (visual), 28 bytes (audio, version 0).
  const childrenAt = entry.payload + (kind === 'video' ? 78 : 28);
  let config: Buffer | null = null;
  for (const c of childBoxes(buf, childrenAt, entry.end, 0)) {
    if (c.type === 'avcC' || c.type === 'hvcC') config = Buffer.from(buf.subarray(c.payload, c.end));
    if (c.type === 'esds') config = ascFromEsds(buf.subarray(c.payload + 4, c.end));
  }
  return { id, kind, timescale, entry: entry.type, config };
}

/** DecSpecificInfo (tag 5) inside ES_Descriptor (3) → DecoderConfigDescriptor (4). */
function ascFromEsds(d: Buffer): Buffer | null {
  let at = 0;
  const header = (): { tag: number; len: number } => {
    const tag = d[at++] as number;
    let len = 0;
    for (let i = 0; i < 4; i++) {
      const b = d[at++] as number;
      len = (len << 7) | (b & 0x7f);
      if (!(b & 0x80)) break;
    }
    return { tag, len };
  };
  if (header().tag !== 3) return null;
  at += 2; // ES_ID
  const f = d[at++] as number;
  if (f & 0x80) at += 2;
  if (f & 0x40) at += 1 + (d[at] as number);
  if (f & 0x20) at += 2;
  if (header().tag !== 4) return null;
  at += 13;
  const dsi = header();
  if (dsi.tag !== 5) return null;
  return Buffer.from(d.subarray(at, at + dsi.len));
}

/** A minimal AMF0 onMetaData body: the string, then an ECMA array of numbers. */
export function onMetaDataBody(values: Record<string, number>): Buffer {
  const parts: Buffer[] = [];
  const str = (s: string): Buffer => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(Buffer.byteLength(s));
    return Buffer.concat([b, Buffer.from(s)]);
  };
  parts.push(Buffer.from([0x02]), str('onMetaData'));
  const head = Buffer.alloc(5);
  head[0] = 0x08;
  head.writeUInt32BE(Object.keys(values).length, 1);
  parts.push(head);
  for (const [k, v] of Object.entries(values)) {
    const n = Buffer.alloc(9);
    n[0] = 0x00;
    n.writeDoubleBE(v, 1);
    parts.push(str(k), n);
  }
  parts.push(Buffer.from([0, 0, 0x09]));
  return Buffer.concat(parts);
}

export interface ToFlvOptions {
  /** How video is carried: legacy codec id (7 AVC / 12 HEVC) or an enhanced-RTMP FourCC header. */
  video: 'legacy' | 'enhanced';
}

/** The FLV tags for an MP4's first video and first audio track, interleaved by DTS. */
export function mp4ToFlvTags(mp4: Mp4Contents, opts: ToFlvOptions): FlvTag[] {
  const video = mp4.tracks.find((t) => t.kind === 'video' && t.config !== null);
  const audio = mp4.tracks.find((t) => t.kind === 'audio' && t.config !== null && t.entry === 'mp4a');
  const ms = (v: number, ts: number): number => Math.round((v * 1000) / ts);
  const isHevc = video !== undefined && (video.entry === 'hvc1' || video.entry === 'hev1');
  const fourcc = Buffer.from(isHevc ? 'hvc1' : 'avc1', 'latin1');
  const legacyId = isHevc ? 12 : 7;
  const si24 = (v: number): Buffer => {
    const b = Buffer.alloc(3);
    b.writeIntBE(v, 0, 3);
    return b;
  };
  const media: Array<FlvTag & { order: number }> = [];
  let order = 0;
  let minDts = 0;
  for (const s of mp4.samples) {
    if (video !== undefined && s.trackId === video.id) {
      const dts = ms(s.dts, video.timescale);
      const cts = ms(s.dts + s.cto, video.timescale) - dts;
      minDts = Math.min(minDts, dts);
      const frameType = s.sync ? 1 : 2;
      let body: Buffer;
      if (opts.video === 'enhanced') {
        // CodedFramesX when the offset is 0 (what OBS sends), CodedFrames with an SI24 otherwise.
        body = cts === 0
          ? Buffer.concat([Buffer.from([0x80 | (frameType << 4) | 3]), fourcc, s.data])
          : Buffer.concat([Buffer.from([0x80 | (frameType << 4) | 1]), fourcc, si24(cts), s.data]);
      } else {
        body = Buffer.concat([Buffer.from([(frameType << 4) | legacyId, 1]), si24(cts), s.data]);
      }
      media.push({ type: 9, timestamp: dts, body, order: order++ });
    } else if (audio !== undefined && s.trackId === audio.id) {
      const dts = ms(s.dts, audio.timescale);
      minDts = Math.min(minDts, dts);
      media.push({ type: 8, timestamp: dts, body: Buffer.concat([Buffer.from([0xaf, 0x01]), s.data]), order: order++ });
    }
  }
  // Like flvenc: shift so nothing is negative; stable sort by DTS keeps each track's order.
  for (const t of media) t.timestamp -= minDts;
  media.sort((a, b) => a.timestamp - b.timestamp || a.order - b.order);

  const tags: FlvTag[] = [];
  const meta: Record<string, number> = {};
  if (video !== undefined) meta['videocodecid'] = opts.video === 'enhanced' ? fourcc.readUInt32BE(0) : legacyId;
  if (audio !== undefined) meta['audiocodecid'] = 10;
  tags.push({ type: 18, timestamp: 0, body: onMetaDataBody(meta) });
  if (video !== undefined && video.config !== null) {
    const body = opts.video === 'enhanced'
      ? Buffer.concat([Buffer.from([0x80 | (1 << 4) | 0]), fourcc, video.config])
      : Buffer.concat([Buffer.from([(1 << 4) | legacyId, 0, 0, 0, 0]), video.config]);
    tags.push({ type: 9, timestamp: 0, body });
  }
  if (audio !== undefined && audio.config !== null) {
    tags.push({ type: 8, timestamp: 0, body: Buffer.concat([Buffer.from([0xaf, 0x00]), audio.config]) });
  }
  for (const { type, timestamp, body } of media) tags.push({ type, timestamp, body });
  return tags;
}

/** Serialises tags into an FLV file with our writer. */
export function writeFlvFile(tags: readonly FlvTag[]): Buffer {
  const w = new FlvWriter();
  const hasAudio = tags.some((t) => t.type === 8);
  const hasVideo = tags.some((t) => t.type === 9);
  return Buffer.concat([w.header({ audio: hasAudio, video: hasVideo }), ...tags.map((t) => w.tag(t))]);
}

function main(argv: string[]): void {
  const [input, output, ...rest] = argv;
  if (input === undefined || output === undefined) {
    console.error('usage: npx tsx scripts/mp4-to-flv.ts in.mp4 out.flv [--video enhanced|legacy]');
    process.exit(2);
  }
  const mode = rest[0] === '--video' && rest[1] === 'legacy' ? 'legacy' : 'enhanced';
  const tags = mp4ToFlvTags(readFragmentedMp4(readFileSync(input)), { video: mode });
  writeFileSync(output, writeFlvFile(tags));
  console.log(`${output}: ${tags.length} tags (${mode} video)`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main(process.argv.slice(2));
