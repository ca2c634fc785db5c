/**
 * AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1), the `AF 00` payload: object type, sampling rate,
 * channel configuration, frame length, and explicit or backward-compatible SBR signalling. Enough to
 * pick the MP4 timescale and the samples per frame; the record itself is copied into esds verbatim.
 */
import { MediaError } from '../errors.js';
import { BitReader } from './bit-reader.js';

export interface AacConfig {
  codec: 'aac';
  /** The record verbatim (the esds DecSpecificInfo). */
  record: Buffer;
  /** audioObjectType as signalled first (2 LC, 5 SBR, 29 PS…): the codec string's last field. */
  objectType: number;
  /** The AAC core's object type (2 for HE-AAC signalled with AOT 5). */
  coreObjectType: number;
  /** Core sampling rate from samplingFrequencyIndex (or the explicit 24-bit value). */
  sampleRate: number;
  /** SBR output rate when SBR is explicitly signalled and present, else null. */
  extensionSampleRate: number | null;
  /** channelConfiguration (0 = in a program_config_element). */
  channelConfig: number;
  /** Channel count implied by channelConfiguration (2 for PS); 0 when it is in a PCE. */
  channels: number;
  /** Core samples per frame: 1024, or 960 when frameLengthFlag is set. */
  frameLength: 960 | 1024;
  /** The MP4 media timescale (what FFmpeg uses: the SBR rate when signalled, else the core rate). */
  timescale: number;
  /** Samples per AAC frame at `timescale`. */
  samplesPerFrame: number;
  /** RFC 6381 codec string, e.g. `mp4a.40.2`. */
  codecString: string;
}

const RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
const CHANNELS = [0, 1, 2, 3, 4, 5, 6, 8, 0, 0, 0, 7, 8, 24, 8, 0];
/** Object types whose payload starts with GASpecificConfig: the only ones we can time (1024/960 frames). */
const GA_TYPES = new Set([1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23]);
const ER_TYPES = new Set([17, 19, 20, 21, 22, 23]);

function bad(message: string): MediaError {
  return new MediaError('asc-invalid', `AudioSpecificConfig: ${message}`);
}

export function parseAacConfig(record: Buffer): AacConfig {
  if (record.length < 2) throw bad(`${record.length} bytes, shorter than its fixed fields`);
  const r = new BitReader(record, 'asc-invalid', 'AudioSpecificConfig');
  const objectType = readObjectType(r);
  if (objectType === 0) throw bad('audioObjectType 0');
  const sampleRate = readSampleRate(r);
  const channelConfig = r.u(4);
  let coreObjectType = objectType;
  let extensionSampleRate: number | null = null;
  if (objectType === 5 || objectType === 29) {
    extensionSampleRate = readSampleRate(r);
    coreObjectType = readObjectType(r);
    if (coreObjectType === 22) r.skip(4); // extensionChannelConfiguration
  }
  if (!GA_TYPES.has(coreObjectType)) throw bad(`audioObjectType ${coreObjectType} is not an AAC object type we can remux`);
  const frameLength = r.flag() ? 960 : 1024;
  if (r.flag()) r.skip(14); // dependsOnCoreCoder → coreCoderDelay
  const extensionFlag = r.flag();
  // A program_config_element would follow for channelConfiguration 0; we stop there (nothing after it
  // changes the timing we need), so a backward-compatible SBR extension after a PCE goes unseen.
  if (channelConfig !== 0 && extensionSampleRate === null) {
    extensionSampleRate = readTrailingSbr(r, coreObjectType, extensionFlag, sampleRate);
  }
  // SBR doubles the output rate (and so the samples per frame at the output timescale). Any other
  // ratio is not a real SBR configuration: time on the core rate then.
  const sbrFactor = extensionSampleRate !== null && extensionSampleRate === sampleRate * 2 ? 2 : 1;
  const timescale = sampleRate * sbrFactor;
  return {
    codec: 'aac',
    record,
    objectType,
    coreObjectType,
    sampleRate,
    extensionSampleRate: sbrFactor === 2 ? extensionSampleRate : null,
    channelConfig,
    channels: objectType === 29 ? 2 : (CHANNELS[channelConfig] ?? 0),
    frameLength,
    timescale,
    samplesPerFrame: frameLength * sbrFactor,
    codecString: `mp4a.40.${objectType}`,
  };
}

function readObjectType(r: BitReader): number {
  const t = r.u(5);
  return t === 31 ? 32 + r.u(6) : t;
}

function readSampleRate(r: BitReader): number {
  const index = r.u(4);
  if (index === 15) {
    const rate = r.u(24);
    if (rate === 0) throw bad('explicit sampling frequency 0');
    return rate;
  }
  const rate = RATES[index];
  if (rate === undefined) throw bad(`reserved samplingFrequencyIndex ${index}`);
  return rate;
}

/**
 * The rest of GASpecificConfig, then the optional sync extension (0x2B7) that signals SBR
 * backward-compatibly (FFmpeg's encoder writes `56 E5 00`: extension type 5, sbrPresentFlag 0).
 * Returns the SBR rate when sbrPresentFlag is 1, else null. A short tail is simply the end.
 */
function readTrailingSbr(r: BitReader, aot: number, extensionFlag: boolean, coreRate: number): number | null {
  if (aot === 6 || aot === 20) r.skip(3); // layerNr
  if (extensionFlag) {
    if (aot === 22) r.skip(16); // numOfSubFrame, layer_length
    if (aot === 17 || aot === 19 || aot === 20 || aot === 23) r.skip(3); // resilience flags
    r.skip(1); // extensionFlag3
  }
  if (ER_TYPES.has(aot)) {
    if (r.bitsLeft < 2) return null;
    r.skip(2); // epConfig
  }
  if (r.bitsLeft < 16 || r.u(11) !== 0x2b7) return null;
  if (readObjectType(r) !== 5) return null;
  if (r.bitsLeft < 1 || !r.flag()) return null;
  const rate = readSampleRate(r);
  return rate === coreRate ? null : rate;
}
