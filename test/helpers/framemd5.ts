/**
 * ffmpeg's framemd5 muxer as a packet-level fingerprint of a file, and the comparison the reference
 * notes (§7) call meaningful for a remux: per stream (matched by media type), the (size, md5)
 * sequence and the extradata hash exactly; DTS/PTS after rescaling to ms (video exactly, audio within
 * a tolerance); durations, line order and the first audio sample's DTS ignored.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface FramePacket {
  dts: number;
  pts: number;
  size: number;
  md5: string;
}

export interface FrameStream {
  index: number;
  mediaType: string;
  codecId: string;
  timeBase: { num: number; den: number };
  extradata: { size: number; md5: string } | null;
  packets: FramePacket[];
}

/** `ffmpeg -copyts -i FILE -map 0 -c copy -f framemd5 -`, parsed per stream. */
export async function frameMd5(file: string): Promise<FrameStream[]> {
  const { stdout } = await run(
    process.env.FFMPEG_PATH ?? 'ffmpeg',
    ['-hide_banner', '-nostdin', '-v', 'error', '-copyts', '-i', file, '-map', '0', '-c', 'copy', '-flags', '+bitexact', '-fflags', '+bitexact', '-f', 'framemd5', '-'],
    { maxBuffer: 64 << 20 },
  );
  return parseFrameMd5(stdout);
}

export function parseFrameMd5(text: string): FrameStream[] {
  const streams = new Map<number, FrameStream>();
  const stream = (i: number): FrameStream => {
    let s = streams.get(i);
    if (s === undefined) {
      s = { index: i, mediaType: '', codecId: '', timeBase: { num: 1, den: 1 }, extradata: null, packets: [] };
      streams.set(i, s);
    }
    return s;
  };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    let m: RegExpMatchArray | null;
    if ((m = /^#extradata (\d+):\s*(\d+),\s*([0-9a-f]{32})/.exec(line))) {
      stream(Number(m[1])).extradata = { size: Number(m[2]), md5: m[3] as string };
    } else if ((m = /^#tb (\d+): (\d+)\/(\d+)/.exec(line))) {
      stream(Number(m[1])).timeBase = { num: Number(m[2]), den: Number(m[3]) };
    } else if ((m = /^#media_type (\d+): (\w+)/.exec(line))) {
      stream(Number(m[1])).mediaType = m[2] as string;
    } else if ((m = /^#codec_id (\d+): (\w+)/.exec(line))) {
      stream(Number(m[1])).codecId = m[2] as string;
    } else if (!line.startsWith('#')) {
      const f = line.split(',').map((x) => x.trim());
      stream(Number(f[0])).packets.push({ dts: Number(f[1]), pts: Number(f[2]), size: Number(f[4]), md5: f[5] as string });
    }
  }
  return [...streams.values()].sort((a, b) => a.index - b.index);
}

export interface StreamComparison {
  mediaType: string;
  ours: number;
  reference: number;
  /** (size, md5) sequences equal. */
  payloadsEqual: boolean;
  extradataEqual: boolean;
  /** Largest |Δ| of DTS and PTS in ms over the compared packets (first audio DTS excluded). */
  maxTimestampDeltaMs: number;
  timestampsEqual: boolean;
  /** First mismatch, for the failure message. */
  firstDifference: string | null;
}

const toMs = (v: number, tb: { num: number; den: number }): number => (v * tb.num * 1000) / tb.den;

/** Compares two framemd5 dumps stream by stream (matched by media type, in order). */
export function compareFrameMd5(ours: FrameStream[], reference: FrameStream[], audioToleranceMs = 1): StreamComparison[] {
  const out: StreamComparison[] = [];
  const types = [...new Set([...ours, ...reference].map((s) => s.mediaType))].sort().reverse(); // video, audio
  for (const type of types) {
    const a = ours.find((s) => s.mediaType === type);
    const b = reference.find((s) => s.mediaType === type);
    const res: StreamComparison = {
      mediaType: type,
      ours: a?.packets.length ?? 0,
      reference: b?.packets.length ?? 0,
      payloadsEqual: false,
      extradataEqual: false,
      maxTimestampDeltaMs: 0,
      timestampsEqual: false,
      firstDifference: null,
    };
    out.push(res);
    if (a === undefined || b === undefined) {
      res.firstDifference = `${type} stream only in ${a === undefined ? 'the reference' : 'ours'}`;
      continue;
    }
    res.extradataEqual = a.extradata?.md5 === b.extradata?.md5 && a.extradata?.size === b.extradata?.size;
    if (!res.extradataEqual) res.firstDifference = `extradata ${JSON.stringify(a.extradata)} vs ${JSON.stringify(b.extradata)}`;
    res.payloadsEqual = a.packets.length === b.packets.length;
    const tolerance = type === 'audio' ? audioToleranceMs : 1e-6;
    let tsOk = true;
    const n = Math.min(a.packets.length, b.packets.length);
    for (let i = 0; i < n; i++) {
      const x = a.packets[i] as FramePacket;
      const y = b.packets[i] as FramePacket;
      if (x.size !== y.size || x.md5 !== y.md5) {
        res.payloadsEqual = false;
        res.firstDifference ??= `${type} packet ${i}: ${x.size}/${x.md5} vs ${y.size}/${y.md5}`;
      }
      const skipDts = type === 'audio' && i === 0;
      const deltas = [Math.abs(toMs(x.pts, a.timeBase) - toMs(y.pts, b.timeBase))];
      if (!skipDts) deltas.push(Math.abs(toMs(x.dts, a.timeBase) - toMs(y.dts, b.timeBase)));
      // The first audio sample's PTS moves with its DTS (FFmpeg moves it to 0): ignore both.
      if (skipDts) deltas.length = 0;
      for (const d of deltas) {
        res.maxTimestampDeltaMs = Math.max(res.maxTimestampDeltaMs, d);
        if (d > tolerance) {
          tsOk = false;
          res.firstDifference ??= `${type} packet ${i}: dts/pts ${toMs(x.dts, a.timeBase)}/${toMs(x.pts, a.timeBase)} ms vs ${toMs(y.dts, b.timeBase)}/${toMs(y.pts, b.timeBase)} ms`;
        }
      }
    }
    if (a.packets.length !== b.packets.length) res.firstDifference ??= `${type}: ${a.packets.length} packets vs ${b.packets.length}`;
    res.timestampsEqual = tsOk && a.packets.length === b.packets.length;
  }
  return out;
}
