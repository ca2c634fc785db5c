import type { IndexLine } from '../appender/index-writer.js';

/** A byte range of an object: [offset, offset + length). */
export interface ObjectSlice {
  key: string;
  offset: number;
  length: number;
}

/** One HLS media segment: a fragment of an object, played after its object's init segment (`map`). */
export interface HlsSegment extends ObjectSlice {
  /** Media seconds. */
  duration: number;
  /** Wall clock (ms) its media began: EXT-X-PROGRAM-DATE-TIME. */
  wallStart: number;
  /** The init segment to play it with (EXT-X-MAP). */
  map: ObjectSlice;
  /** Starts with a keyframe. */
  independent: boolean;
  /** Not a continuation of the segment before it (another object, a gap, a new init): EXT-X-DISCONTINUITY. */
  discontinuity: boolean;
}

export interface MediaPlaylist {
  segments: readonly HlsSegment[];
  targetDuration: number;
  mediaSequence: number;
  /** EXT-X-DISCONTINUITY-SEQUENCE: discontinuities before the first segment (its own included). */
  discontinuitySequence: number;
  /** VOD: EXT-X-PLAYLIST-TYPE:VOD and EXT-X-ENDLIST; ended: EXT-X-ENDLIST only (a live stream that stopped). */
  kind: 'live' | 'ended' | 'vod';
}

/** A URI for an object (the playlist's segments and maps point into whole objects by byte range). */
export type ObjectUri = (key: string) => string;

/**
 * The segment of one fragment line of `key`'s sidecar index: its media began `d` before its
 * arrival `w` (a fragment arrives complete); a line without a duration counts as 1 s.
 */
export function fragmentSegment<M extends ObjectSlice | null>(key: string, line: IndexLine, map: M, discontinuity: boolean): Omit<HlsSegment, 'map'> & { map: M } {
  const duration = line.d !== undefined && line.d > 0 ? line.d : 1;
  return { key, offset: line.offset, length: line.length, duration, wallStart: line.w - duration * 1000, map, independent: line.k !== false, discontinuity };
}

/** The segment duration HLS requires at least of EXT-X-TARGETDURATION (EXTINF rounded must not exceed it). */
export function targetDurationFor(durations: Iterable<number>): number {
  let max = 1;
  for (const d of durations) max = Math.max(max, Math.ceil(d - 1e-3));
  return max;
}

/**
 * An HLS version 7 media playlist (RFC 8216): fMP4 (or MPEG-TS) segments given as EXT-X-BYTERANGE
 * into the objects, each object's init segment as EXT-X-MAP (repeated when it changes), a
 * program date-time on every segment so players can map playback to the wall clock.
 */
export function renderMediaPlaylist(p: MediaPlaylist, uri: ObjectUri): string {
  const out = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${p.targetDuration}`,
    `#EXT-X-MEDIA-SEQUENCE:${p.mediaSequence}`,
    `#EXT-X-DISCONTINUITY-SEQUENCE:${p.discontinuitySequence}`,
  ];
  if (p.kind === 'vod') out.push('#EXT-X-PLAYLIST-TYPE:VOD');
  if (p.segments.length > 0 && p.segments.every((s) => s.independent)) out.push('#EXT-X-INDEPENDENT-SEGMENTS');
  const uris = new Map<string, string>();
  const uriOf = (key: string): string => {
    let u = uris.get(key);
    if (u === undefined) uris.set(key, (u = uri(key)));
    return u;
  };
  let map: ObjectSlice | undefined;
  p.segments.forEach((s, i) => {
    if (i > 0 && s.discontinuity) out.push('#EXT-X-DISCONTINUITY');
    if (!map || map.key !== s.map.key || map.offset !== s.map.offset || map.length !== s.map.length) {
      map = s.map;
      out.push(`#EXT-X-MAP:URI="${uriOf(map.key)}",BYTERANGE="${map.length}@${map.offset}"`);
    }
    out.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(Math.round(s.wallStart)).toISOString()}`);
    out.push(`#EXTINF:${s.duration.toFixed(3)},`);
    out.push(`#EXT-X-BYTERANGE:${s.length}@${s.offset}`);
    out.push(uriOf(s.key));
  });
  if (p.kind !== 'live') out.push('#EXT-X-ENDLIST');
  return `${out.join('\n')}\n`;
}
