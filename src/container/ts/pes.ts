/**
 * The start of a PES packet (ISO/IEC 13818-1 §2.4.3.6): start code, stream_id, PTS and DTS. The
 * header may span TS packets (a large adaptation field leaves little room in the first one), so
 * it is collected incrementally into a 19-byte buffer: the fixed 9 bytes plus PTS and DTS are all
 * the splitter reads; the rest of the header (extensions, stuffing) is skipped without copying.
 */
import { ContainerError } from '../types.js';
import { hex } from './ts-packet.js';

/** 9 fixed bytes + PTS (5) + DTS (5). */
const TIMING_BYTES = 19;
/** No PTS / DTS in the header. */
export const NO_TIME = -1;

const COLLECT = 0;
const SKIP = 1;
const DONE = 2;

/** stream_ids whose PES packets have no optional header (§2.4.3.7): PSM, padding, private_2, ECM, EMM, DSM-CC, H.222.1 E, directory. */
function hasOptionalHeader(streamId: number): boolean {
  return !(streamId === 0xbc || streamId === 0xbe || streamId === 0xbf || streamId === 0xf0 || streamId === 0xf1 || streamId === 0xf2 || streamId === 0xf8 || streamId === 0xff);
}

/** 33-bit timestamp from 5 bytes at `p` (marker bits not checked). */
function readTimestamp(b: Uint8Array, p: number): number {
  const hi = ((b[p] as number) >> 1) & 0x07;
  const lo = ((b[p + 1] as number) << 22) | (((b[p + 2] as number) >> 1) << 15) | ((b[p + 3] as number) << 7) | ((b[p + 4] as number) >> 1);
  return hi * 2 ** 30 + lo;
}

/** One per elementary PID; `start()` at each payload_unit_start, then `feed()` payloads until `done`. */
export class PesHeaderReader {
  private readonly buf = Buffer.allocUnsafe(TIMING_BYTES);
  private filled = 0;
  private need = 6;
  private skip = 0;
  private state = DONE;
  streamId = 0;
  /** 33-bit PTS / DTS as read (DTS = PTS when absent), NO_TIME when the header has none. */
  pts = NO_TIME;
  dts = NO_TIME;

  /** True between a unit start and the end of its header. */
  get collecting(): boolean {
    return this.state !== DONE;
  }

  start(): void {
    this.filled = 0;
    this.need = 6;
    this.skip = 0;
    this.state = COLLECT;
    this.pts = NO_TIME;
    this.dts = NO_TIME;
  }

  /**
   * Consumes header bytes from `pkt[p..end)`; returns the position after them (the first ES byte
   * once `collecting` is false). `offset` is the stream offset of the PES's first packet, for errors.
   */
  feed(pkt: Uint8Array, p: number, end: number, pid: number, offset: number): number {
    while (p < end && this.state !== DONE) {
      if (this.state === SKIP) {
        const n = Math.min(this.skip, end - p);
        p += n;
        this.skip -= n;
        if (this.skip === 0) this.state = DONE;
        continue;
      }
      const n = Math.min(this.need - this.filled, end - p);
      this.buf.set(pkt.subarray(p, p + n), this.filled);
      this.filled += n;
      p += n;
      if (this.filled < this.need) break;
      this.advance(pid, offset);
    }
    return p;
  }

  /** The header ended (a new unit started, or the stream did) before it was complete. */
  truncated(pid: number, offset: number): ContainerError {
    return new ContainerError(`PES header on PID ${pid} at offset ${offset} is cut short`, { offset, unit: 'PES' });
  }

  /** `need` bytes are in: read them and decide what comes next. */
  private advance(pid: number, offset: number): void {
    const b = this.buf;
    const bad = (why: string): ContainerError => new ContainerError(`PES on PID ${pid} at offset ${offset}: ${why}`, { offset, unit: 'PES' });
    if (this.need === 6) {
      if (b[0] !== 0 || b[1] !== 0 || b[2] !== 1) throw bad(`no start code (0x${hex(b[0] as number)}${hex(b[1] as number)}${hex(b[2] as number)})`);
      this.streamId = b[3] as number;
      if (!hasOptionalHeader(this.streamId)) {
        this.state = DONE;
        return;
      }
      this.need = 9;
      return;
    }
    if (this.need === 9) {
      if (((b[6] as number) & 0xc0) !== 0x80) throw bad(`stream_id 0x${hex(this.streamId)} header lacks its '10' marker bits`);
      const flags = (b[7] as number) >> 6;
      if (flags === 1) throw bad('PTS_DTS_flags 01 is forbidden');
      const timing = flags === 3 ? 10 : flags === 2 ? 5 : 0;
      const headerDataLength = b[8] as number;
      if (headerDataLength < timing) throw bad(`PES_header_data_length ${headerDataLength} cannot hold its ${timing} timestamp bytes`);
      this.skip = headerDataLength - timing;
      if (timing > 0) {
        this.need = 9 + timing;
        return;
      }
    } else {
      this.pts = readTimestamp(b, 9);
      this.dts = this.need === 19 ? readTimestamp(b, 14) : this.pts;
    }
    this.state = this.skip > 0 ? SKIP : DONE;
  }
}
