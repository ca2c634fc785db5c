/**
 * ftyp + moov for fragmented MP4, laid out as FFmpeg's movenc writes it with
 * `-movflags +frag_keyframe+empty_moov+default_base_moof` (see the reference notes §7): brands iso5
 * (iso5, iso6, mp41), mvhd at 1000 Hz, one trak per track (tkhd, mdhd, hdlr, vmhd|smhd, dinf, stbl
 * with a single sample entry and empty tables), mvex with one trex per track, no edts, no udta.
 *
 * Deliberate differences from FFmpeg: mvhd next_track_ID is the real next id (FFmpeg writes 2
 * whatever the count), HEVC is always `hvc1` with the hvcC copied verbatim (FFmpeg defaults to
 * `hev1` and rewrites the record), the video timescale is 90 kHz (FFmpeg: 16 kHz for FLV input),
 * and mp4a carries no btrt (we do not know the bitrates; esds says 0 = unknown).
 */
import type { InitSegment, TrackInfo } from '../../container/types.js';
import type { AacConfig } from '../../media/codec/aac-config.js';
import { ByteWriter, UNITY_MATRIX } from './box-writer.js';
import { VIDEO_TIMESCALE, videoSampleEntry, type TrackConfig, type VideoConfig } from './track-config.js';

/** Everything but the configuration records fits well within this per track. */
const TRACK_OVERHEAD_BYTES = 1024;

export function trackInfo(t: TrackConfig): TrackInfo {
  return t.kind === 'video'
    ? { id: t.id, kind: 'video', timescale: VIDEO_TIMESCALE, codec: videoSampleEntry(t.config) }
    : { id: t.id, kind: 'audio', timescale: t.config.timescale, codec: 'mp4a' };
}

export function writeInitSegment(tracks: readonly TrackConfig[]): InitSegment {
  let capacity = 256;
  for (const t of tracks) capacity += TRACK_OVERHEAD_BYTES + t.config.record.length;
  const w = new ByteWriter(Buffer.alloc(capacity));

  const ftyp = w.open('ftyp');
  w.fourcc('iso5');
  w.u32(512);
  for (const brand of ['iso5', 'iso6', 'mp41']) w.fourcc(brand);
  w.close(ftyp);

  const moov = w.open('moov');
  writeMvhd(w, Math.max(0, ...tracks.map((t) => t.id)) + 1);
  for (const t of tracks) writeTrak(w, t);
  const mvex = w.open('mvex');
  for (const t of tracks) {
    const trex = w.openFull('trex', 0, 0);
    w.u32(t.id);
    w.u32(1); // default_sample_description_index
    w.u32(0); // default_sample_duration
    w.u32(0); // default_sample_size
    w.u32(0); // default_sample_flags
    w.close(trex);
  }
  w.close(mvex);
  w.close(moov);

  // One small copy to the exact size, so the init does not pin the over-sized scratch buffer.
  return { type: 'init', bytes: Buffer.from(w.buf.subarray(0, w.position)), tracks: tracks.map(trackInfo) };
}

function writeMvhd(w: ByteWriter, nextTrackId: number): void {
  const b = w.openFull('mvhd', 0, 0);
  w.u32(0); // creation_time
  w.u32(0); // modification_time
  w.u32(1000); // timescale
  w.u32(0); // duration
  w.u32(0x00010000); // rate 1.0
  w.u16(0x0100); // volume 1.0
  w.zeros(10); // reserved
  for (const m of UNITY_MATRIX) w.u32(m);
  w.zeros(24); // pre_defined
  w.u32(nextTrackId);
  w.close(b);
}

/** Display width in 16.16: the coded width stretched by the pixel aspect ratio, as FFmpeg does. */
function displayWidth1616(config: VideoConfig): number {
  return Math.round((config.width * 0x10000 * config.sar.num) / config.sar.den);
}

function writeTrak(w: ByteWriter, t: TrackConfig): void {
  const trak = w.open('trak');
  const tkhd = w.openFull('tkhd', 0, 0x000003); // enabled | in_movie
  w.u32(0); // creation_time
  w.u32(0); // modification_time
  w.u32(t.id);
  w.u32(0); // reserved
  w.u32(0); // duration
  w.zeros(8); // reserved
  w.u16(0); // layer
  w.u16(t.kind === 'audio' ? 1 : 0); // alternate_group
  w.u16(t.kind === 'audio' ? 0x0100 : 0); // volume
  w.u16(0); // reserved
  for (const m of UNITY_MATRIX) w.u32(m);
  if (t.kind === 'video') {
    w.u32(Math.min(displayWidth1616(t.config), 0xffffffff));
    w.u32(t.config.height * 0x10000);
  } else {
    w.u32(0);
    w.u32(0);
  }
  w.close(tkhd);

  const mdia = w.open('mdia');
  const mdhd = w.openFull('mdhd', 0, 0);
  w.u32(0); // creation_time
  w.u32(0); // modification_time
  w.u32(t.kind === 'video' ? VIDEO_TIMESCALE : t.config.timescale);
  w.u32(0); // duration
  w.u16(0x55c4); // language 'und'
  w.u16(0); // pre_defined
  w.close(mdhd);

  const hdlr = w.openFull('hdlr', 0, 0);
  w.u32(0); // pre_defined
  w.fourcc(t.kind === 'video' ? 'vide' : 'soun');
  w.zeros(12); // reserved
  const name = t.kind === 'video' ? 'VideoHandler' : 'SoundHandler';
  w.bytes(Buffer.from(name, 'latin1'));
  w.u8(0);
  w.close(hdlr);

  const minf = w.open('minf');
  if (t.kind === 'video') {
    const vmhd = w.openFull('vmhd', 0, 1);
    w.zeros(8); // graphicsmode, opcolor
    w.close(vmhd);
  } else {
    const smhd = w.openFull('smhd', 0, 0);
    w.zeros(4); // balance, reserved
    w.close(smhd);
  }
  const dinf = w.open('dinf');
  const dref = w.openFull('dref', 0, 0);
  w.u32(1);
  const url = w.openFull('url ', 0, 1); // self-contained
  w.close(url);
  w.close(dref);
  w.close(dinf);

  const stbl = w.open('stbl');
  const stsd = w.openFull('stsd', 0, 0);
  w.u32(1);
  if (t.kind === 'video') writeVisualSampleEntry(w, t.config);
  else writeMp4aSampleEntry(w, t.config, t.id);
  w.close(stsd);
  for (const type of ['stts', 'stsc', 'stco']) {
    const b = w.openFull(type, 0, 0);
    w.u32(0); // entry_count
    w.close(b);
  }
  const stsz = w.openFull('stsz', 0, 0);
  w.u32(0); // sample_size
  w.u32(0); // sample_count
  w.close(stsz);
  w.close(stbl);
  w.close(minf);
  w.close(mdia);
  w.close(trak);
}

function writeVisualSampleEntry(w: ByteWriter, config: VideoConfig): void {
  const entry = w.open(videoSampleEntry(config));
  w.zeros(6); // reserved
  w.u16(1); // data_reference_index
  w.zeros(16); // pre_defined, reserved
  w.u16(config.width);
  w.u16(config.height);
  w.u32(0x00480000); // horizresolution 72 dpi
  w.u32(0x00480000); // vertresolution
  w.u32(0); // reserved
  w.u16(1); // frame_count
  w.zeros(32); // compressorname
  w.u16(0x0018); // depth
  w.u16(0xffff); // pre_defined = -1
  const cfg = w.open(config.codec === 'avc' ? 'avcC' : 'hvcC');
  w.bytes(config.record);
  w.close(cfg);
  const pasp = w.open('pasp');
  w.u32(config.sar.num);
  w.u32(config.sar.den);
  w.close(pasp);
  w.close(entry);
}

function writeMp4aSampleEntry(w: ByteWriter, config: AacConfig, trackId: number): void {
  const entry = w.open('mp4a');
  w.zeros(6); // reserved
  w.u16(1); // data_reference_index
  w.zeros(8); // reserved
  w.u16(2); // channelcount: the ISO template value; decoders read the ASC
  w.u16(16); // samplesize
  w.u16(0); // pre_defined
  w.u16(0); // reserved
  w.u32(config.timescale <= 0xffff ? config.timescale * 0x10000 : 0); // samplerate 16.16
  writeEsds(w, config.record, trackId);
  w.close(entry);
}

/** esds with 4-byte descriptor lengths (`80 80 80 nn`), as FFmpeg and Chromium write them. */
function writeEsds(w: ByteWriter, asc: Buffer, esId: number): void {
  const descriptor = (tag: number, length: number): void => {
    w.u8(tag);
    w.u8(0x80 | ((length >>> 21) & 0x7f));
    w.u8(0x80 | ((length >>> 14) & 0x7f));
    w.u8(0x80 | ((length >>> 7) & 0x7f));
    w.u8(length & 0x7f);
  };
  const decSpecific = 5 + asc.length;
  const decoderConfig = 13 + decSpecific;
  const slConfig = 5 + 1;
  const esdsBox = w.openFull('esds', 0, 0);
  descriptor(0x03, 3 + 5 + decoderConfig + slConfig);
  w.u16(esId);
  w.u8(0); // no stream dependence, URL or OCR; priority 0
  descriptor(0x04, decoderConfig);
  w.u8(0x40); // objectTypeIndication: ISO/IEC 14496-3 audio
  w.u8(0x15); // streamType audio (5) << 2 | upStream 0 | reserved 1
  w.u24(0); // bufferSizeDB
  w.u32(0); // maxBitrate (unknown)
  w.u32(0); // avgBitrate (unknown)
  descriptor(0x05, asc.length);
  w.bytes(asc);
  descriptor(0x06, 1);
  w.u8(0x02); // SLConfigDescriptor predefined = 2 (MP4)
  w.close(esdsBox);
}
