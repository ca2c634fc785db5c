import type { AppendableStore } from '../store/types.js';
import { fragmentSegment, targetDurationFor, type HlsSegment, type MediaPlaylist, type ObjectSlice } from './hls-playlist.js';
import { readIndexLines } from './index-lines.js';
import { listRecordings } from './recordings.js';

/** Segments in one VOD playlist at most (about 14 hours of 1 s fragments). */
export const MAX_VOD_SEGMENTS = 50_000;

/**
 * A VOD playlist of `stream` over [start, end), from the store alone: the recordings overlapping
 * the range (listing + HEAD, cached by the caller's map), each one's sidecar index, and every
 * fragment whose media overlaps the range, beginning at the keyframe at or before `start`. Unlike a
 * clip (one file) it spans sessions and init changes: each object brings its own EXT-X-MAP, and a
 * new object, a gap or a new init is an EXT-X-DISCONTINUITY. Undefined: nothing recorded there.
 */
export async function planVod(
  store: AppendableStore,
  o: { stream: string; keyTemplate: string; start: Date; end: Date },
): Promise<MediaPlaylist | undefined> {
  const t0 = o.start.getTime();
  const t1 = o.end.getTime();
  const recs = await listRecordings(store, { stream: o.stream, keyTemplate: o.keyTemplate, start: o.start, end: o.end });
  const segments: HlsSegment[] = [];
  for (const rec of recs) {
    let map: ObjectSlice | undefined;
    let discontinuity = segments.length > 0; // another object
    const candidates: HlsSegment[] = [];
    for (const line of await readIndexLines(store, rec.key)) {
      if (line.type === 'init') {
        if (map && map.offset !== line.offset) discontinuity = true;
        map = { key: rec.key, offset: line.offset, length: line.length };
      } else if (line.type === 'gap') {
        discontinuity = true;
      } else if (line.type === 'fragment' && map && line.length > 0) {
        const seg = fragmentSegment(rec.key, line, map, discontinuity);
        if (seg.wallStart >= t1) break;
        candidates.push(seg);
        discontinuity = false;
      }
    }
    // Before the range: only from the last keyframe at or before its start.
    let from = 0;
    if (segments.length === 0) {
      let before = -1;
      candidates.forEach((s, i) => {
        if (s.independent && s.wallStart <= t0) before = i;
      });
      from = before >= 0 ? before : candidates.findIndex((s) => s.independent && s.wallStart + s.duration * 1000 > t0);
      if (from < 0) continue;
      candidates[from]!.discontinuity = false;
    }
    for (const s of candidates.slice(from)) {
      if (segments.length >= MAX_VOD_SEGMENTS) break;
      segments.push(s);
    }
  }
  if (segments.length === 0) return undefined;
  return {
    segments,
    targetDuration: targetDurationFor(segments.map((s) => s.duration)),
    mediaSequence: 0,
    discontinuitySequence: 0,
    kind: 'vod',
  };
}
