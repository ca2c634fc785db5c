/**
 * Moves an MPEG-TS stream on the media timeline so that it starts at `target` seconds: every PES
 * header's PTS/DTS and every adaptation field's PCR get the same number of 90 kHz ticks added, in
 * place (33-bit arithmetic, so sizes never change), and each fragment's `startTime` with them. This
 * is the TS sibling of the fMP4 TimelineShift: a pulled camera that reconnects within the grace
 * continues its object after the last fragment plus the real gap, although its new ffmpeg was
 * started before anyone knew there would be a gap (so -output_ts_offset cannot be used).
 *
 * The offset is fixed at the first fragment: `target` minus the earliest PES time in it (leading
 * audio can come before the first keyframe's DTS), so no packet of the continuation is earlier than
 * `target`. Only the stream's own PES carry times: a packet is taken as a PES start when it starts a
 * unit on a PID above the PSI range and its payload begins with the 00 00 01 start code (a PSI
 * section starts with its pointer field and table id, never with that code). A PES header may span
 * packets of its PID within one output; one cut off at the end of an output is left unchanged
 * (ffmpeg never writes one: its first packet of a PES always holds the whole header).
 */
import type { ContainerOutput } from '../types.js';
import { LAST_SI_PID, NULL_PID, SYNC_BYTE, TS_PACKET_SIZE } from './ts-packet.js';

const TICKS = 90_000;
const WRAP = 2 ** 33;

export class TsTimelineShift {
  readonly target: number;
  /** Ticks added to every time, known from the first fragment on. */
  private ticks: number | undefined;

  constructor(targetSeconds: number) {
    if (!(targetSeconds >= 0) || !Number.isFinite(targetSeconds)) throw new RangeError(`timeline target must be ≥ 0 s, got ${targetSeconds}`);
    this.target = targetSeconds;
  }

  /** Seconds added to every time (undefined before the first fragment). */
  get seconds(): number | undefined {
    return this.ticks === undefined ? undefined : this.ticks / TICKS;
  }

  /** Shifts the fragments (and trailers) among `outputs` in place and returns them; inits (PAT/PMT) carry no times. */
  apply(outputs: ContainerOutput[]): ContainerOutput[] {
    for (const out of outputs) {
      if (out.type === 'init') continue;
      if (this.ticks === undefined) {
        if (out.type !== 'fragment') continue; // nothing timed yet: PSI-only trailer
        const earliest = earliestTime(out.bytes);
        const from = earliest ?? Math.round(out.startTime * TICKS);
        this.ticks = Math.round(this.target * TICKS) - from;
      }
      shiftPackets(out.bytes, this.ticks);
      if (out.type === 'fragment') out.startTime += this.ticks / TICKS;
    }
    return outputs;
  }
}

/** Where the bytes of one PES header lie in `buf`: absolute indices of header bytes 0..n-1, across the PID's packets. */
function headerBytes(buf: Uint8Array, at: number, payloadStart: number, pid: number, want: number): number[] {
  const idx: number[] = [];
  for (let p = at; p + TS_PACKET_SIZE <= buf.length && idx.length < want; p += TS_PACKET_SIZE) {
    let from: number;
    if (p === at) {
      from = at + payloadStart;
    } else {
      if (buf[p] !== SYNC_BYTE || packetPid(buf, p) !== pid) continue;
      if (((buf[p + 1] as number) & 0x40) !== 0) break; // the next unit started: this header was cut short
      from = p + payloadOffset(buf, p);
    }
    for (let i = from; i < p + TS_PACKET_SIZE && idx.length < want; i++) idx.push(i);
  }
  return idx;
}

function packetPid(buf: Uint8Array, p: number): number {
  return (((buf[p + 1] as number) & 0x1f) << 8) | (buf[p + 2] as number);
}

/** First payload byte of the packet at `p`, relative to it (188: none). */
function payloadOffset(buf: Uint8Array, p: number): number {
  const afc = ((buf[p + 3] as number) >> 4) & 0x3;
  if (afc === 1) return 4;
  if (afc === 2 || afc === 0) return TS_PACKET_SIZE;
  return Math.min(TS_PACKET_SIZE, 5 + (buf[p + 4] as number));
}

function readTs(buf: Uint8Array, i: readonly number[], k: number): number {
  const b = (n: number): number => buf[i[k + n] as number] as number;
  return ((b(0) >> 1) & 0x07) * 2 ** 30 + ((b(1) << 22) | ((b(2) >> 1) << 15) | (b(3) << 7) | (b(4) >> 1));
}

/** Writes a 33-bit time into the 5 bytes at header offset k, keeping the 4-bit prefix and the marker bits. */
function writeTs(buf: Uint8Array, i: readonly number[], k: number, t: number): void {
  const at = (n: number): number => i[k + n] as number;
  const hi = Math.floor(t / 2 ** 30) & 0x07;
  const lo = t % 2 ** 30;
  buf[at(0)] = ((buf[at(0)] as number) & 0xf1) | (hi << 1);
  buf[at(1)] = (lo >>> 22) & 0xff;
  buf[at(2)] = ((((lo >>> 15) & 0x7f) << 1) | 1) & 0xff;
  buf[at(3)] = (lo >>> 7) & 0xff;
  buf[at(4)] = (((lo & 0x7f) << 1) | 1) & 0xff;
}

const mod = (t: number): number => ((t % WRAP) + WRAP) % WRAP;

interface PesTimes {
  /** Header byte indices (see headerBytes). */
  idx: number[];
  /** 2: PTS only, 3: PTS and DTS. */
  flags: number;
}

/** The timestamp fields of the PES starting in the packet at `p`, if it is a PES start with times. */
function pesTimesAt(buf: Uint8Array, p: number): PesTimes | undefined {
  if (((buf[p + 1] as number) & 0x40) === 0) return undefined;
  const pid = packetPid(buf, p);
  if (pid <= LAST_SI_PID || pid === NULL_PID) return undefined;
  const payload = payloadOffset(buf, p);
  if (payload >= TS_PACKET_SIZE) return undefined;
  const idx = headerBytes(buf, p, payload, pid, 19);
  if (idx.length < 9) return undefined;
  const b = (n: number): number => buf[idx[n] as number] as number;
  if (b(0) !== 0 || b(1) !== 0 || b(2) !== 1) return undefined;
  const sid = b(3);
  if (sid === 0xbc || sid === 0xbe || sid === 0xbf || (sid >= 0xf0 && sid <= 0xf2) || sid === 0xf8 || sid === 0xff) return undefined;
  if ((b(6) & 0xc0) !== 0x80) return undefined;
  const flags = b(7) >> 6;
  if (flags < 2 || idx.length < (flags === 3 ? 19 : 14)) return undefined;
  return { idx, flags };
}

/** The earliest PTS/DTS in `buf` (ticks, as read), if any. */
function earliestTime(buf: Uint8Array): number | undefined {
  let min: number | undefined;
  for (let p = 0; p + TS_PACKET_SIZE <= buf.length; p += TS_PACKET_SIZE) {
    if (buf[p] !== SYNC_BYTE) break;
    const t = pesTimesAt(buf, p);
    if (!t) continue;
    const v = t.flags === 3 ? readTs(buf, t.idx, 14) : readTs(buf, t.idx, 9);
    if (min === undefined || v < min) min = v;
  }
  return min;
}

/** Adds `ticks` to every PCR and PES PTS/DTS of the whole packets in `buf`. */
export function shiftPackets(buf: Uint8Array, ticks: number): void {
  if (ticks === 0) return;
  for (let p = 0; p + TS_PACKET_SIZE <= buf.length; p += TS_PACKET_SIZE) {
    if (buf[p] !== SYNC_BYTE) break; // the splitter only emits whole, synced packets
    const afc = ((buf[p + 3] as number) >> 4) & 0x3;
    if ((afc === 2 || afc === 3) && (buf[p + 4] as number) >= 7 && ((buf[p + 5] as number) & 0x10) !== 0) {
      // PCR: 33-bit base at bytes 6..10 (top 33 bits), then 6 reserved bits and a 9-bit extension.
      const q = p + 6;
      const base = (buf[q] as number) * 2 ** 25 + ((buf[q + 1] as number) << 17) + ((buf[q + 2] as number) << 9) + ((buf[q + 3] as number) << 1) + ((buf[q + 4] as number) >> 7);
      const nb = mod(base + ticks);
      buf[q] = Math.floor(nb / 2 ** 25) & 0xff;
      buf[q + 1] = Math.floor(nb / 2 ** 17) & 0xff;
      buf[q + 2] = Math.floor(nb / 2 ** 9) & 0xff;
      buf[q + 3] = Math.floor(nb / 2) & 0xff;
      buf[q + 4] = ((nb & 1) << 7) | ((buf[q + 4] as number) & 0x7f);
    }
    const t = pesTimesAt(buf, p);
    if (!t) continue;
    writeTs(buf, t.idx, 9, mod(readTs(buf, t.idx, 9) + ticks));
    if (t.flags === 3) writeTs(buf, t.idx, 14, mod(readTs(buf, t.idx, 14) + ticks));
  }
}
