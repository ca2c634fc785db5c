/**
 * PSI sections (ISO/IEC 13818-1 §2.4.4): reassembly of a section from TS packet payloads, and the
 * two tables the splitter needs, PAT (program → PMT PID) and PMT (program → elementary streams).
 *
 * Sections are checked strictly, CRC-32 included: the input is a local ffmpeg pipe, so a bad
 * section means corrupted bytes, and accepting one would announce a bogus init segment (a new
 * object). The splitter compares a repeated section's bytes with the current one before parsing,
 * so the CRC is only computed when a table's content changes.
 */
import type { TrackKind } from '../types.js';
import { ContainerError } from '../types.js';
import { hex } from './ts-packet.js';

/** PAT and PMT: section_length ≤ 1021 (§2.4.4.3, §2.4.4.8), so a section is at most 1024 bytes. */
export const MAX_SECTION_LENGTH = 1021;
export const MAX_SECTION_BYTES = 3 + MAX_SECTION_LENGTH;
export const PAT_TABLE_ID = 0x00;
export const PMT_TABLE_ID = 0x02;

/** Receives each complete section; `section` is a view of a reused buffer, valid during the call only. */
export type SectionHandler = (pid: number, section: Buffer, packetOffset: number) => void;

/**
 * Reassembles the sections of one PID from packet payloads (pointer_field, sections spanning
 * packets, several sections in one packet, 0xFF stuffing). Holds at most one section.
 */
export class SectionAssembler {
  pid: number;
  private readonly buf = Buffer.allocUnsafe(MAX_SECTION_BYTES);
  private readonly onSection: SectionHandler;
  private filled = 0;
  /** Total bytes of the section being assembled; 0 until its 3-byte header is in. */
  private need = 0;
  private active = false;

  constructor(pid: number, onSection: SectionHandler) {
    this.pid = pid;
    this.onSection = onSection;
  }

  reset(pid: number): void {
    this.pid = pid;
    this.active = false;
  }

  /** Feeds the payload `pkt[start..end)` of one packet at stream offset `offset`. */
  push(pkt: Uint8Array, start: number, end: number, unitStart: boolean, offset: number): void {
    let p = start;
    if (unitStart) {
      const pointer = pkt[p++] as number;
      if (p + pointer > end) {
        throw new ContainerError(`pointer_field ${pointer} overruns the packet (PSI on PID ${this.pid} at offset ${offset})`, { offset, unit: 'section' });
      }
      // The bytes before the pointer finish the section in progress; one they do not finish is lost.
      if (this.active) p = this.append(pkt, p, p + pointer, offset);
      this.active = false;
      p = start + 1 + pointer;
    } else if (!this.active) {
      return; // continuation of a section whose start we never saw
    }
    while (p < end) {
      if (!this.active) {
        if (pkt[p] === 0xff) return; // stuffing up to the end of the packet
        this.active = true;
        this.filled = 0;
        this.need = 0;
      }
      p = this.append(pkt, p, end, offset);
      if (this.active) return; // the section continues in a later packet
    }
  }

  /** Copies section bytes from `pkt[p..end)`; emits the section when complete. Returns the new position. */
  private append(pkt: Uint8Array, p: number, end: number, offset: number): number {
    while (p < end) {
      const want = (this.need === 0 ? 3 : this.need) - this.filled;
      const n = Math.min(want, end - p);
      this.buf.set(pkt.subarray(p, p + n), this.filled);
      this.filled += n;
      p += n;
      if (this.filled < 3) continue;
      if (this.need === 0) {
        const length = (((this.buf[1] as number) & 0x0f) << 8) | (this.buf[2] as number);
        if (length > MAX_SECTION_LENGTH) {
          throw new ContainerError(`PSI section_length ${length} over ${MAX_SECTION_LENGTH} (table 0x${hex(this.buf[0] as number)} on PID ${this.pid} at offset ${offset})`, {
            offset,
            unit: 'section',
          });
        }
        this.need = 3 + length;
        continue;
      }
      if (this.filled === this.need) {
        this.active = false;
        this.onSection(this.pid, this.buf.subarray(0, this.need), offset);
        return p;
      }
    }
    return p;
  }
}

// ---------- CRC-32/MPEG-2 (poly 0x04C11DB7, init all ones, no reflection, no final xor) ----------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32/MPEG-2 of `buf`; over a whole section including its CRC_32 field it is 0. */
export function crc32Mpeg2(buf: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < buf.length; i++) crc = ((crc << 8) ^ (CRC_TABLE[((crc >>> 24) ^ (buf[i] as number)) & 0xff] as number)) >>> 0;
  return crc;
}

// ---------- tables ----------

export interface PatInfo {
  /** The first program (program_number ≠ 0; 0 names the NIT) and where its PMT is. */
  programNumber: number;
  pmtPid: number;
}

export interface ElementaryStream {
  pid: number;
  streamType: number;
  kind: TrackKind;
  /** Codec name for TrackInfo: 'h264', 'hevc', 'aac'…, or 'other'. */
  codec: string;
}

export interface PmtInfo {
  programNumber: number;
  pcrPid: number;
  streams: ElementaryStream[];
}

/**
 * The long-form header checks PAT and PMT share. Returns false for a table that is not yet
 * applicable (current_next_indicator 0), which the splitter ignores.
 */
function checkSection(s: Buffer, tableId: number, minLength: number, unit: string, pid: number, offset: number): boolean {
  const bad = (why: string): ContainerError => new ContainerError(`${unit} ${why} (PID ${pid}, section in the packet at offset ${offset})`, { offset, unit });
  if (s[0] !== tableId) throw bad(`has table_id 0x${hex(s[0] as number)}`);
  if (((s[1] as number) & 0x80) === 0) throw bad('has section_syntax_indicator 0');
  if (s.length < minLength) throw bad(`section is ${s.length} bytes, shorter than its fixed fields`);
  if (crc32Mpeg2(s) !== 0) throw bad('fails its CRC-32');
  // One section per table: what ffmpeg (and every single-program muxer) writes.
  if (s[6] !== 0 || s[7] !== 0) throw bad(`is section ${s[6] as number} of ${(s[7] as number) + 1}: multi-section tables are not supported`);
  return ((s[5] as number) & 0x01) === 1;
}

export function parsePat(s: Buffer, pid: number, offset: number): PatInfo | null {
  if (!checkSection(s, PAT_TABLE_ID, 8 + 4, 'PAT', pid, offset)) return null;
  const end = s.length - 4;
  if ((end - 8) % 4 !== 0) throw new ContainerError(`PAT program loop is ${end - 8} bytes, not a multiple of 4 (offset ${offset})`, { offset, unit: 'PAT' });
  for (let p = 8; p < end; p += 4) {
    const programNumber = s.readUInt16BE(p);
    if (programNumber === 0) continue; // network PID
    const pmtPid = s.readUInt16BE(p + 2) & 0x1fff;
    if (pmtPid <= 0x001f || pmtPid === 0x1fff) {
      throw new ContainerError(`PAT maps program ${programNumber} to reserved PID ${pmtPid} (offset ${offset})`, { offset, unit: 'PAT' });
    }
    return { programNumber, pmtPid };
  }
  throw new ContainerError(`PAT lists no program (offset ${offset})`, { offset, unit: 'PAT' });
}

export function parsePmt(s: Buffer, pid: number, offset: number): PmtInfo | null {
  if (!checkSection(s, PMT_TABLE_ID, 12 + 4, 'PMT', pid, offset)) return null;
  const bad = (why: string): ContainerError => new ContainerError(`PMT ${why} (PID ${pid}, offset ${offset})`, { offset, unit: 'PMT' });
  const end = s.length - 4;
  const programInfoLength = s.readUInt16BE(10) & 0x0fff;
  let p = 12 + programInfoLength;
  if (p > end) throw bad(`program_info_length ${programInfoLength} overruns the section`);
  const streams: ElementaryStream[] = [];
  const seen = new Set<number>();
  while (p < end) {
    if (p + 5 > end) throw bad('elementary stream entry overruns the section');
    const streamType = s[p] as number;
    const esPid = s.readUInt16BE(p + 1) & 0x1fff;
    const infoLength = s.readUInt16BE(p + 3) & 0x0fff;
    p += 5 + infoLength;
    if (p > end) throw bad(`ES_info_length ${infoLength} of PID ${esPid} overruns the section`);
    // The splitter tells PSI from media by PID, so media must not use a table PID.
    if (esPid <= 0x001f || esPid === 0x1fff || esPid === pid) throw bad(`puts an elementary stream on reserved or table PID ${esPid}`);
    if (seen.has(esPid)) throw bad(`lists PID ${esPid} twice`);
    seen.add(esPid);
    streams.push({ pid: esPid, streamType, ...streamTypeInfo(streamType) });
  }
  return { programNumber: s.readUInt16BE(3), pcrPid: s.readUInt16BE(8) & 0x1fff, streams };
}

/**
 * stream_type → kind and codec name (§2.4.4.9 table 2-34, ITU-T H.222.0 amendments). Only H.264
 * and H.265 are 'video': the splitter can find their keyframes, and cuts on nothing else.
 */
export function streamTypeInfo(streamType: number): { kind: TrackKind; codec: string } {
  switch (streamType) {
    case 0x1b:
      return { kind: 'video', codec: 'h264' };
    case 0x24:
      return { kind: 'video', codec: 'hevc' };
    case 0x0f:
      return { kind: 'audio', codec: 'aac' };
    case 0x11:
      return { kind: 'audio', codec: 'aac_latm' };
    case 0x03:
    case 0x04:
      return { kind: 'audio', codec: 'mpeg_audio' };
    default:
      return { kind: 'other', codec: 'other' };
  }
}
