import { describe, expect, it } from 'vitest';
import type { IndexLine } from '../../src/appender/index-writer.js';
import { renderMediaPlaylist, targetDurationFor } from '../../src/playback/hls-playlist.js';
import { LiveWindow } from '../../src/playback/live-window.js';

const T0 = Date.parse('2026-12-06T10:00:00Z');
const init = (offset = 0): IndexLine => ({ type: 'init', offset, length: 600, w: T0 });
/** The n-th 1 s fragment of an object whose init is 600 bytes, each 1000 bytes. */
const frag = (n: number, d = 1, k = true): IndexLine => ({ seq: n + 1, type: 'fragment', offset: 600 + n * 1000, length: 1000, t: n, d, w: T0 + (n + 1) * 1000, k });
const uri = (key: string): string => `/media/${key}`;

/** Each segment's (key, offset) with the media sequence number the playlist gives it. */
function numbered(w: LiveWindow): Map<string, number> {
  const p = w.playlist()!;
  return new Map(p.segments.map((s, i) => [`${s.key}@${s.offset}`, p.mediaSequence + i]));
}

describe('LiveWindow', () => {
  it('is empty before the first fragment, then lists fragments with their init as EXT-X-MAP', () => {
    const w = new LiveWindow();
    expect(w.playlist()).toBeUndefined();
    w.push('a.mp4', [init(), frag(0), frag(1)]);
    const text = renderMediaPlaylist(w.playlist()!, uri);
    expect(text).toContain('#EXT-X-VERSION:7');
    expect(text).toContain('#EXT-X-TARGETDURATION:1');
    expect(text).toContain('#EXT-X-MEDIA-SEQUENCE:0');
    expect(text).toContain('#EXT-X-MAP:URI="/media/a.mp4",BYTERANGE="600@0"');
    expect(text).toContain('#EXT-X-BYTERANGE:1000@600\n/media/a.mp4');
    expect(text).toContain('#EXT-X-BYTERANGE:1000@1600\n/media/a.mp4');
    expect(text).toContain(`#EXT-X-PROGRAM-DATE-TIME:${new Date(T0).toISOString()}`);
    expect(text).not.toContain('#EXT-X-ENDLIST');
    expect(text).not.toContain('#EXT-X-DISCONTINUITY\n');
  });

  it('numbers segments once: a segment keeps its media sequence number as the window slides and across rollovers', () => {
    const w = new LiveWindow();
    w.push('a.mp4', [init(), ...Array.from({ length: 30 }, (_, i) => frag(i))]);
    const before = numbered(w);
    expect(w.playlist()!.mediaSequence).toBeGreaterThan(0); // the window slid: 24 s of 30
    w.push('b.mp4', [init(), ...Array.from({ length: 10 }, (_, i) => frag(i))]);
    const after = numbered(w);
    let common = 0;
    for (const [seg, n] of after) {
      if (before.has(seg)) {
        expect(n).toBe(before.get(seg));
        common++;
      }
    }
    expect(common).toBeGreaterThan(5);
    const p = w.playlist()!;
    const text = renderMediaPlaylist(p, uri);
    // The rollover: a discontinuity, then the new object's init.
    expect(text).toMatch(/#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="\/media\/b.mp4",BYTERANGE="600@0"\n/);
    expect(p.discontinuitySequence).toBe(0);
    // Once a's fragments have left the window, the discontinuity is counted instead of tagged.
    w.push('b.mp4', Array.from({ length: 30 }, (_, i) => frag(10 + i)));
    const later = w.playlist()!;
    expect(later.discontinuitySequence).toBe(1);
    expect(renderMediaPlaylist(later, uri)).not.toContain('#EXT-X-DISCONTINUITY\n');
    expect(later.mediaSequence).toBe(70 - later.segments.length);
  });

  it('marks a gap (a reconnect within the grace) and a new init mid-object as discontinuities', () => {
    const w = new LiveWindow();
    w.push('a.mp4', [init(), frag(0), frag(1)]);
    w.push('a.mp4', [{ type: 'gap', offset: 2600, length: 0, w: T0 + 9000, g: 6 }]);
    w.push('a.mp4', [frag(2)]);
    w.push('a.mp4', [{ seq: 9, type: 'init', offset: 5000, length: 700, w: T0 + 10_000 }, { ...frag(3), offset: 5700 }]);
    const text = renderMediaPlaylist(w.playlist()!, uri);
    expect(text.match(/#EXT-X-DISCONTINUITY\n/g)).toHaveLength(2);
    expect(text).toContain('#EXT-X-MAP:URI="/media/a.mp4",BYTERANGE="700@5000"');
  });

  it('ends with EXT-X-ENDLIST when the stream stopped, and goes on live when it comes back', () => {
    const w = new LiveWindow();
    w.push('a.mp4', [init(), frag(0)]);
    w.end();
    expect(renderMediaPlaylist(w.playlist()!, uri)).toMatch(/#EXT-X-ENDLIST\n$/);
    w.push('b.mp4', [init(), frag(0)]);
    const text = renderMediaPlaylist(w.playlist()!, uri);
    expect(text).not.toContain('#EXT-X-ENDLIST');
    expect(text).toContain('#EXT-X-DISCONTINUITY\n');
  });

  it('holds fragments of an object whose init it never saw until the map is resolved', () => {
    const w = new LiveWindow();
    w.push('resumed.mp4', [frag(5), frag(6)]);
    expect(w.playlist()).toBeUndefined();
    expect(w.unknownMaps()).toEqual(['resumed.mp4']);
    w.resolveMap({ key: 'resumed.mp4', offset: 0, length: 600 });
    expect(w.unknownMaps()).toEqual([]);
    expect(w.playlist()!.segments).toHaveLength(2);
  });

  it('keeps the target duration at or above every segment (rounded up), and marks independence only when every segment is a keyframe', () => {
    expect(targetDurationFor([0.96, 2.0004, 1.5])).toBe(2);
    expect(targetDurationFor([2.2])).toBe(3);
    const w = new LiveWindow();
    w.push('a.mp4', [init(), frag(0, 2.2), frag(1, 1, false)]);
    const text = renderMediaPlaylist(w.playlist()!, uri);
    expect(text).toContain('#EXT-X-TARGETDURATION:3');
    expect(text).toContain('#EXTINF:2.200,');
    expect(text).not.toContain('#EXT-X-INDEPENDENT-SEGMENTS');
  });
});
