/**
 * The fixed 4-byte MPEG-TS packet header and the adaptation field (ISO/IEC 13818-1 §2.4.3.2–2.4.3.5),
 * read in place from the received bytes. The splitter runs this for every packet of every camera,
 * so it fills one reused `PacketHeader` instead of returning a new object.
 */
import { ContainerError } from '../types.js';

export const TS_PACKET_SIZE = 188;
export const SYNC_BYTE = 0x47;
export const PAT_PID = 0x0000;
/** PIDs 0x0000–0x001F carry PSI/SI tables only (PAT, CAT, NIT, SDT, EIT, TDT…), never media. */
export const LAST_SI_PID = 0x001f;
export const NULL_PID = 0x1fff;

export class PacketHeader {
  pid = 0;
  payloadUnitStart = false;
  /** adaptation_field random_access_indicator: the muxer's claim that a random access point starts here. */
  randomAccess = false;
  /** Index of the first payload byte within the packet: 4..187, or 188 when the packet has no payload. */
  payloadStart = TS_PACKET_SIZE;
}

/**
 * Reads the header of the packet at `buf[at..at+188)` (stream offset `offset`) into `out`. Throws
 * ContainerError on lost sync and on what only a broken or foreign stream contains: the transport
 * error flag, scrambling, the reserved adaptation_field_control value, an adaptation field that
 * overruns the packet, or a unit start without a payload.
 */
export function readPacketHeader(buf: Uint8Array, at: number, offset: number, out: PacketHeader): void {
  const sync = buf[at] as number;
  if (sync !== SYNC_BYTE) {
    throw new ContainerError(`lost sync: byte 0x${hex(sync)} at offset ${offset} where a TS packet (0x47) should start`, { offset, unit: 'packet' });
  }
  const b1 = buf[at + 1] as number;
  const b3 = buf[at + 3] as number;
  const pid = ((b1 & 0x1f) << 8) | (buf[at + 2] as number);
  // A local ffmpeg pipe never sets these; when they show up the bytes are not what the muxer wrote.
  if (b1 & 0x80) throw packetError('transport_error_indicator set', pid, offset);
  if (b3 & 0xc0) throw packetError('scrambled packet', pid, offset);
  const afc = (b3 >> 4) & 0x3;
  if (afc === 0) throw packetError('reserved adaptation_field_control 00', pid, offset);
  out.pid = pid;
  out.payloadUnitStart = (b1 & 0x40) !== 0;
  out.randomAccess = false;
  if (afc === 1) {
    out.payloadStart = 4;
    return;
  }
  const afLength = buf[at + 4] as number;
  // 10: adaptation field only, it fills the packet; 11: adaptation field then at least one payload byte.
  if (afc === 2 ? afLength !== 183 : afLength > 182) throw packetError(`adaptation_field_length ${afLength} does not fit the packet`, pid, offset);
  if (afLength > 0) out.randomAccess = ((buf[at + 5] as number) & 0x40) !== 0;
  out.payloadStart = afc === 2 ? TS_PACKET_SIZE : 5 + afLength;
  if (out.payloadUnitStart && afc === 2) throw packetError('payload_unit_start_indicator on a packet without payload', pid, offset);
}

function packetError(why: string, pid: number, offset: number): ContainerError {
  return new ContainerError(`${why} (TS packet on PID ${pid} at offset ${offset})`, { offset, unit: 'packet' });
}

export function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}
