/**
 * Which remuxer records a publish, from its codecs and the stream's settings (`remux`, `format`,
 * `audio`). The native remuxer writes fMP4 from H.264/H.265 + AAC without a child process; ffmpeg is
 * needed to transcode audio (G.711 → AAC, or `audio: aac`) and to write MPEG-TS. ffmpeg reads H.265
 * from FLV only from 6.1 and only as enhanced RTMP, so H.265 reaches ffmpeg as our own fMP4.
 */
import type { AudioPolicy, RemuxSetting, StreamFormat } from '../config/index.js';
import type { ProbedCodecs } from './codec-probe.js';

export interface RemuxChoice {
  kind: 'native' | 'ffmpeg';
  codecs: ProbedCodecs;
  /** ffmpeg only: what it reads on stdin — the publish as FLV, or our native fMP4 (H.265). */
  input: 'flv' | 'mp4';
  /** ffmpeg only: what it writes. */
  format: StreamFormat;
  /** ffmpeg only: copy the audio, transcode it to AAC, or none. */
  audio: 'copy' | 'aac' | 'none';
  /** Audio packets that are not recorded (dropped by policy, or a codec this path cannot carry). */
  dropAudio: boolean;
  /** For the log line. */
  why: string;
}

export interface RemuxSettings {
  remux: RemuxSetting;
  format: StreamFormat;
  audio: AudioPolicy;
}

export function chooseRemux(s: RemuxSettings, c: ProbedCodecs): RemuxChoice {
  return { ...choose(s, c), codecs: c };
}

function choose(s: RemuxSettings, c: ProbedCodecs): Omit<RemuxChoice, 'codecs'> {
  const g711 = c.audio === 'pcma' || c.audio === 'pcmu';
  const hevc = c.video === 'hevc';
  // What becomes of the audio: [dropped?, transcoded?, why].
  let drop = s.audio === 'drop' || c.audio === undefined;
  let transcode = false;
  const notes: string[] = [];
  if (s.audio === 'drop' && c.audio !== undefined) notes.push('audio: drop');
  if (!drop && g711) {
    if (s.audio === 'copy') {
      drop = true;
      notes.push('G.711 cannot be copied into MP4 or MPEG-TS for players (audio: copy): audio not recorded');
    } else if (hevc) {
      // Our native fMP4 (ffmpeg's only way to read H.265 from RTMP) does not carry G.711.
      drop = true;
      notes.push('H.265 with G.711: the audio cannot be transcoded on this path and is not recorded');
    } else {
      transcode = true;
      notes.push('G.711 audio is transcoded to AAC');
    }
  } else if (!drop && s.audio === 'aac' && !hevc) {
    transcode = true;
    notes.push('audio: aac (transcoded)');
  }
  const audio = drop ? 'none' as const : transcode ? 'aac' as const : 'copy' as const;
  const needsFfmpeg = s.format === 'mpegts' || transcode || (s.remux === 'ffmpeg' && !hevc);
  if (!needsFfmpeg) {
    if (s.remux === 'ffmpeg') notes.push('H.265 is remuxed natively (ffmpeg cannot read it from FLV)');
    return { kind: 'native', input: 'flv', format: 'fmp4', audio, dropAudio: drop, why: notes.join('; ') || 'H.264/H.265 with AAC or no audio' };
  }
  if (s.format === 'mpegts') notes.push('MPEG-TS is written by ffmpeg');
  if (hevc) notes.push('H.265 reaches ffmpeg as our native fMP4');
  return { kind: 'ffmpeg', input: hevc ? 'mp4' : 'flv', format: s.format, audio, dropAudio: drop, why: notes.join('; ') || 'remux: ffmpeg' };
}
