/** Which remuxer records a publish, for every codec × setting combination that matters. */
import { describe, expect, it } from 'vitest';
import { chooseRemux, type RemuxSettings } from '../../src/stream/remux-choice.js';
import type { ProbedCodecs } from '../../src/stream/codec-probe.js';

const S = (o: Partial<RemuxSettings> = {}): RemuxSettings => ({ remux: 'native', format: 'fmp4', audio: 'auto', ...o });
const C = (video: ProbedCodecs['video'], audio: ProbedCodecs['audio']): ProbedCodecs => ({ video, audio });
const pick = (s: RemuxSettings, c: ProbedCodecs) => {
  const r = chooseRemux(s, c);
  return `${r.kind}${r.kind === 'ffmpeg' ? `(${r.input}→${r.format}, audio ${r.audio})` : r.dropAudio ? '(no audio)' : ''}`;
};

describe('chooseRemux', () => {
  const cases: Array<[string, RemuxSettings, ProbedCodecs, string]> = [
    ['H.264 + AAC', S(), C('avc', 'aac'), 'native'],
    ['H.265 + AAC', S(), C('hevc', 'aac'), 'native'],
    ['H.264 only', S(), C('avc', undefined), 'native(no audio)'],
    ['AAC only', S(), C(undefined, 'aac'), 'native'],
    ['H.264 + G.711 → AAC', S(), C('avc', 'pcma'), 'ffmpeg(flv→fmp4, audio aac)'],
    ['H.264 + µ-law, audio: copy (cannot be carried)', S({ audio: 'copy' }), C('avc', 'pcmu'), 'native(no audio)'],
    ['H.265 + G.711 (not transcodable on this path)', S(), C('hevc', 'pcma'), 'native(no audio)'],
    ['audio: drop', S({ audio: 'drop' }), C('avc', 'aac'), 'native(no audio)'],
    ['audio: aac on AAC', S({ audio: 'aac' }), C('avc', 'aac'), 'ffmpeg(flv→fmp4, audio aac)'],
    ['remux: ffmpeg', S({ remux: 'ffmpeg' }), C('avc', 'aac'), 'ffmpeg(flv→fmp4, audio copy)'],
    ['remux: ffmpeg with H.265 stays native', S({ remux: 'ffmpeg' }), C('hevc', 'aac'), 'native'],
    ['MPEG-TS, H.264 + AAC', S({ format: 'mpegts' }), C('avc', 'aac'), 'ffmpeg(flv→mpegts, audio copy)'],
    ['MPEG-TS, H.265 via our fMP4', S({ format: 'mpegts' }), C('hevc', 'aac'), 'ffmpeg(mp4→mpegts, audio copy)'],
    ['MPEG-TS, H.264 + G.711', S({ format: 'mpegts' }), C('avc', 'pcmu'), 'ffmpeg(flv→mpegts, audio aac)'],
    ['MPEG-TS, audio: drop', S({ format: 'mpegts', audio: 'drop' }), C('avc', 'aac'), 'ffmpeg(flv→mpegts, audio none)'],
  ];
  for (const [name, s, c, want] of cases) it(name, () => expect(pick(s, c)).toBe(want));

  it('says why in one line', () => {
    expect(chooseRemux(S(), C('hevc', 'pcma')).why).toMatch(/G\.711.*not recorded/);
    expect(chooseRemux(S({ audio: 'copy' }), C('avc', 'pcma')).why).toMatch(/cannot be copied/);
  });
});
