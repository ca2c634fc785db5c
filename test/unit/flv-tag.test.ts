/**
 * parseFlvTag: legacy AVC/HEVC (codec 7, 12), enhanced RTMP v1 (ExHeader + FourCC) and the v2
 * ModEx/Multitrack forms, frame-type-5 and empty payloads, AAC and G.711 audio, the codecs we refuse,
 * onMetaData in both wrappings, and truncated headers (MediaError, never a RangeError).
 */
import { describe, expect, it } from 'vitest';
import { encodeAmf0, AmfEcmaArray } from '../../src/media/amf/amf0.js';
import { AmfError } from '../../src/media/amf/errors.js';
import { parseFlvTag } from '../../src/media/flv/flv-tag.js';
import type { FlvTag, FlvTagType, ParsedTag } from '../../src/media/types.js';
import { expectMediaError } from '../helpers/expect-error.js';

const tag = (type: FlvTagType, bytes: number[] | Buffer, timestamp = 1000): FlvTag => ({ type, timestamp, body: Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes) });
const video = (bytes: number[] | Buffer): ParsedTag => parseFlvTag(tag(9, bytes));
const audio = (bytes: number[] | Buffer): ParsedTag => parseFlvTag(tag(8, bytes));
const NALS = [0, 0, 0, 2, 0x65, 0x88];
const HVC1 = [...Buffer.from('hvc1')];
const si24 = (v: number): number[] => {
  const b = Buffer.alloc(3);
  b.writeIntBE(v, 0, 3);
  return [...b];
};

describe('legacy video tags', () => {
  it('AVC config, keyframe, inter frame with negative CTS, end of sequence', () => {
    expect(video([0x17, 0, 0, 0, 0, 1, 0x64])).toMatchObject({ kind: 'video', codec: 'avc', packetType: 'config', keyframe: false, cts: 0, header: 'legacy' });
    expect(video([0x17, 1, ...si24(80), ...NALS])).toMatchObject({ kind: 'video', packetType: 'frame', keyframe: true, cts: 80 });
    expect(video([0x27, 1, ...si24(-40), ...NALS])).toMatchObject({ kind: 'video', packetType: 'frame', keyframe: false, cts: -40 });
    expect(video([0x27, 1, ...si24(-8388608), ...NALS])).toMatchObject({ cts: -8388608 });
    expect(video([0x17, 2, 0, 0, 0])).toMatchObject({ kind: 'video', packetType: 'end', data: Buffer.alloc(0) });
  });

  it('codec id 12 is HEVC laid out like AVC', () => {
    expect(video([0x1c, 0, 0, 0, 0, 1, 1])).toMatchObject({ kind: 'video', codec: 'hevc', packetType: 'config', header: 'legacy' });
    expect(video([0x2c, 1, ...si24(40), ...NALS])).toMatchObject({ codec: 'hevc', packetType: 'frame', keyframe: false, cts: 40 });
  });

  it('payloads are views into the tag body (no copy)', () => {
    const t = tag(9, [0x17, 1, 0, 0, 0, ...NALS]);
    const p = parseFlvTag(t);
    expect(p.kind === 'video' && p.data.buffer === t.body.buffer && p.data.byteOffset === t.body.byteOffset + 5).toBe(true);
    expect(p.tag).toBe(t);
  });

  it('only frame type 1 is a keyframe (4 "generated keyframe" is not, as in FFmpeg)', () => {
    expect(video([0x47, 1, 0, 0, 0, ...NALS])).toMatchObject({ keyframe: false });
    expect(video([0x37, 1, 0, 0, 0, ...NALS])).toMatchObject({ keyframe: false });
  });

  it('frame type 5 (info/command) and empty payloads are skipped', () => {
    expect(video([0x57, 0])).toMatchObject({ kind: 'skip', reason: 'video info/command frame' });
    expect(video([0x52, 1])).toMatchObject({ kind: 'skip' });
    expect(video([])).toMatchObject({ kind: 'skip' });
    expect(video([0x17])).toMatchObject({ kind: 'skip' });
    expect(video([0x17, 1, 0, 0, 0])).toMatchObject({ kind: 'skip', reason: 'empty video frame' });
    expect(video([0x17, 0, 0, 0, 0])).toMatchObject({ kind: 'skip', reason: 'empty video config' });
  });

  it('other codec ids are unsupported, with a short name', () => {
    expect(video([0x12, 0xaa])).toMatchObject({ kind: 'unsupported', media: 'video', codec: 'h263' });
    expect(video([0x14, 0xaa])).toMatchObject({ kind: 'unsupported', codec: 'vp6' });
    expect(video([0x1d, 0xaa])).toMatchObject({ kind: 'unsupported', codec: 'av1' });
    expect(video([0x1b, 0xaa])).toMatchObject({ kind: 'unsupported', codec: 'video-11' });
    expect(video([0x1f, 0xaa])).toMatchObject({ kind: 'unsupported', codec: 'video-codec-15' });
  });

  it('truncated headers and undefined packet types are MediaErrors', () => {
    expectMediaError(() => video([0x17, 1, 0]), 'flv-tag-truncated');
    expectMediaError(() => video([0x17, 3, 0, 0, 0, 1]), 'flv-tag-invalid');
  });
});

describe('enhanced RTMP video tags', () => {
  it('hvc1: SequenceStart, CodedFrames (SI24 CTS), CodedFramesX (CTS 0), SequenceEnd', () => {
    expect(video([0x90, ...HVC1, 1, 2, 3])).toMatchObject({ kind: 'video', codec: 'hevc', packetType: 'config', header: 'enhanced', data: Buffer.from([1, 2, 3]) });
    expect(video([0x91, ...HVC1, ...si24(-80), ...NALS])).toMatchObject({ packetType: 'frame', keyframe: true, cts: -80, data: Buffer.from(NALS) });
    expect(video([0xa3, ...HVC1, ...NALS])).toMatchObject({ packetType: 'frame', keyframe: false, cts: 0, data: Buffer.from(NALS) });
    expect(video([0x92, ...HVC1])).toMatchObject({ packetType: 'end' });
  });

  it('avc1 (E-RTMP v2) is AVC', () => {
    expect(video([0x91, ...Buffer.from('avc1'), ...si24(40), ...NALS])).toMatchObject({ kind: 'video', codec: 'avc', header: 'enhanced', cts: 40 });
  });

  it('other FourCCs are unsupported by name; unprintable ones in hex', () => {
    for (const fourcc of ['av01', 'vp09', 'vp08', 'vvc1']) {
      expect(video([0x90, ...Buffer.from(fourcc), 1])).toMatchObject({ kind: 'unsupported', media: 'video', codec: fourcc });
    }
    expect(video([0x90, 0, 1, 2, 3, 1])).toMatchObject({ kind: 'unsupported', codec: '0x00010203' });
  });

  it('Metadata, MPEG2TSSequenceStart, command frames and reserved packet types are skipped', () => {
    expect(video([0x94, ...HVC1, 2, 0, 9])).toMatchObject({ kind: 'skip', reason: 'enhanced video metadata' });
    expect(video([0xd4, ...HVC1, 2, 0, 9])).toMatchObject({ kind: 'skip', reason: 'enhanced video metadata' }); // frame type 5 ignored for Metadata
    expect(video([0x95, ...HVC1, 1])).toMatchObject({ kind: 'skip' });
    expect(video([0xd1, 0])).toMatchObject({ kind: 'skip', reason: 'video info/command frame' });
    expect(video([0x9f, ...HVC1, 1])).toMatchObject({ kind: 'skip', reason: 'enhanced video packet type 15' });
  });

  it('ModEx prefixes (8- and 16-bit sizes) are consumed and their data ignored', () => {
    // ModEx (7), 3 bytes of TimestampOffsetNano, then type 0<<4 | CodedFrames (1).
    expect(video([0x97, 2, 0x0f, 0x42, 0x3f, 0x01, ...HVC1, ...si24(40), ...NALS])).toMatchObject({ kind: 'video', packetType: 'frame', keyframe: true, cts: 40 });
    const big = Buffer.alloc(300, 7);
    const body = Buffer.concat([Buffer.from([0x97, 0xff, 0x01, 0x2b]), big, Buffer.from([0x03]), Buffer.from(HVC1), Buffer.from(NALS)]);
    expect(video(body)).toMatchObject({ kind: 'video', packetType: 'frame', cts: 0, data: Buffer.from(NALS) });
    // Two ModEx in a row.
    expect(video([0x97, 0, 9, 0x07, 0, 9, 0x03, ...HVC1, ...NALS])).toMatchObject({ kind: 'video', packetType: 'frame' });
    expectMediaError(() => video([0x97, 5, 1, 2]), 'flv-tag-truncated');
    expectMediaError(() => video([0x97, 0xff, 1]), 'flv-tag-truncated');
  });

  it('Multitrack: track 0 is taken, other tracks are skipped (OneTrack, ManyTracks, ManyTracksManyCodecs)', () => {
    expect(video([0x96, 0x01, ...HVC1, 0, ...si24(40), ...NALS])).toMatchObject({ kind: 'video', codec: 'hevc', cts: 40, data: Buffer.from(NALS) });
    expect(video([0x96, 0x01, ...HVC1, 1, ...si24(40), ...NALS])).toMatchObject({ kind: 'skip', reason: 'multitrack video without track 0' });
    const track = (id: number, payload: number[]): number[] => [id, ...u24(payload.length), ...payload];
    const many = [0x96, 0x13, ...HVC1, ...track(2, [1, 2, 3, 4]), ...track(0, [...NALS])];
    expect(video(many)).toMatchObject({ kind: 'video', packetType: 'frame', cts: 0, data: Buffer.from(NALS) });
    const manyCodecs = [0x96, 0x23, ...Buffer.from('av01'), ...track(1, [9]), ...HVC1, ...track(0, [...NALS])];
    expect(video(manyCodecs)).toMatchObject({ kind: 'video', codec: 'hevc' });
    const onlyAv1 = [0x96, 0x23, ...Buffer.from('av01'), ...track(0, [9])];
    expect(video(onlyAv1)).toMatchObject({ kind: 'unsupported', codec: 'av01' });
    expectMediaError(() => video([0x96, 0x13, ...HVC1, 0, 0, 0, 9, 1]), 'flv-tag-truncated');
    expectMediaError(() => video([0x96, 0x31, ...HVC1, 0]), 'flv-tag-invalid');
    expectMediaError(() => video([0x96, 0x16, ...HVC1, 0]), 'flv-tag-invalid');
  });

  it('truncated FourCC and CTS are MediaErrors', () => {
    expectMediaError(() => video([0x91, 0x68, 0x76]), 'flv-tag-truncated');
    expectMediaError(() => video([0x91, ...HVC1, 0]), 'flv-tag-truncated');
  });
});

function u24(v: number): number[] {
  return [(v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff];
}

describe('audio tags', () => {
  it('AAC config and frame; rate/channels flags are reported as sent', () => {
    expect(audio([0xaf, 0, 0x11, 0x90])).toMatchObject({ kind: 'audio', codec: 'aac', packetType: 'config', channels: 2, data: Buffer.from([0x11, 0x90]) });
    expect(audio([0xae, 1, 0x21, 0x10])).toMatchObject({ kind: 'audio', codec: 'aac', packetType: 'frame', channels: 1 });
    expect(audio([0xaf])).toMatchObject({ kind: 'skip' });
    expect(audio([0xaf, 1])).toMatchObject({ kind: 'skip', reason: 'empty AAC frame' });
    expectMediaError(() => audio([0xaf, 2, 1]), 'flv-tag-invalid');
  });

  it('G.711 A-law and µ-law are frames with the channel flag', () => {
    expect(audio([0x72, 1, 2, 3])).toMatchObject({ kind: 'audio', codec: 'pcma', packetType: 'frame', channels: 1, data: Buffer.from([1, 2, 3]) });
    expect(audio([0x83, 1, 2])).toMatchObject({ kind: 'audio', codec: 'pcmu', channels: 2 });
    expect(audio([0x72])).toMatchObject({ kind: 'skip' });
  });

  it('other sound formats are unsupported with a short name', () => {
    const names: Array<[number, string]> = [[0x2f, 'mp3'], [0xb6, 'speex'], [0x6e, 'nellymoser'], [0x1e, 'adpcm'], [0x0e, 'pcm'], [0x3e, 'pcm-le'], [0xee, 'mp3-8k']];
    for (const [b, name] of names) expect(audio([b, 1, 2])).toMatchObject({ kind: 'unsupported', media: 'audio', codec: name });
    expect(audio([0x90, ...Buffer.from('Opus'), 1])).toMatchObject({ kind: 'unsupported', codec: 'Opus' });
    expect(audio([0x90, ...Buffer.from('mp4a'), 1])).toMatchObject({ kind: 'unsupported', codec: 'enhanced-aac' });
    expect(audio([0x97, 1])).toMatchObject({ kind: 'unsupported', codec: 'enhanced-audio' });
    expect(audio([])).toMatchObject({ kind: 'skip' });
  });
});

describe('script data', () => {
  const meta = new AmfEcmaArray({ width: 320, height: 240, videocodecid: 7, audiocodecid: 10 });
  it('onMetaData, bare or wrapped in @setDataFrame', () => {
    const bare = parseFlvTag(tag(18, encodeAmf0(['onMetaData', meta])));
    expect(bare.kind).toBe('metadata');
    if (bare.kind === 'metadata') expect({ ...bare.values }).toEqual({ width: 320, height: 240, videocodecid: 7, audiocodecid: 10 });
    const wrapped = parseFlvTag(tag(18, encodeAmf0(['@setDataFrame', 'onMetaData', meta])));
    expect(wrapped).toMatchObject({ kind: 'metadata' });
  });

  it('other script data and onMetaData without an object are skipped', () => {
    expect(parseFlvTag(tag(18, encodeAmf0(['onCuePoint', { name: 'x' }])))).toMatchObject({ kind: 'skip' });
    expect(parseFlvTag(tag(18, encodeAmf0(['onMetaData', 5])))).toMatchObject({ kind: 'skip', reason: 'onMetaData without an object' });
    expect(parseFlvTag(tag(18, []))).toMatchObject({ kind: 'skip' });
  });

  it('malformed AMF is an AmfError', () => {
    expect(() => parseFlvTag(tag(18, [0x02, 0, 10, 0x6f]))).toThrow(AmfError);
  });
});
