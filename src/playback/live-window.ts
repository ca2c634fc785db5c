import type { IndexLine } from '../appender/index-writer.js';
import { fragmentSegment, targetDurationFor, type HlsSegment, type MediaPlaylist, type ObjectSlice } from './hls-playlist.js';

/** Segments kept per stream (a few minutes of 1-2 s fragments): the playlist shows the newest of them. */
const KEPT = 180;
/** The live playlist spans at least this much media (and 6 target durations). */
const WINDOW_SECONDS = 24;

/**
 * The live HLS window of one stream: its sidecar index lines as the appender queues them (the
 * bytes are in the object by then; the index object itself trails by its batching), numbered once
 * and for all. Media sequence numbers and discontinuity counts run on across rollovers, new
 * sessions and reconnects, so a player that reloads the playlist always finds its place.
 * Fragments of an object whose init line this window never saw (a recording resumed after a
 * restart) wait for `resolveMap` with their map unknown.
 */
export class LiveWindow {
  private segments: Array<Omit<HlsSegment, 'map'> & { map: ObjectSlice | null; msn: number; dsn: number }> = [];
  private readonly maps = new Map<string, ObjectSlice>();
  private nextMsn = 0;
  private dsn = 0;
  private currentKey: string | undefined;
  private discontinuityNext = false;
  private maxDuration = 1;
  private ended = false;

  /** Lines the appender queued for `key`'s index, in order. */
  push(key: string, lines: readonly IndexLine[]): void {
    if (this.ended) {
      this.ended = false;
      this.discontinuityNext = true;
    }
    if (key !== this.currentKey) {
      if (this.currentKey !== undefined) this.discontinuityNext = true;
      this.currentKey = key;
    }
    for (const line of lines) {
      if (line.type === 'init') {
        const prev = this.maps.get(key);
        this.maps.set(key, { key, offset: line.offset, length: line.length });
        if (prev && prev.offset !== line.offset) this.discontinuityNext = true; // a new init mid-object
      } else if (line.type === 'gap') {
        this.discontinuityNext = true;
      } else if (line.type === 'fragment' && line.length > 0) {
        this.add(key, line);
      }
    }
  }

  private add(key: string, line: IndexLine): void {
    const seg = fragmentSegment(key, line, this.maps.get(key) ?? null, this.discontinuityNext);
    this.discontinuityNext = false;
    if (seg.discontinuity) this.dsn++;
    this.maxDuration = Math.max(this.maxDuration, seg.duration);
    this.segments.push({ ...seg, msn: this.nextMsn++, dsn: this.dsn });
    if (this.segments.length > KEPT) this.segments.splice(0, this.segments.length - KEPT);
  }

  /** The stream stopped and everything it sent is in the store: the playlist gets EXT-X-ENDLIST. */
  end(): void {
    this.ended = true;
  }

  /** Objects whose init segment the window does not know (fragments wait for it). */
  unknownMaps(): string[] {
    return [...new Set(this.segments.filter((s) => s.map === null && !this.maps.has(s.key)).map((s) => s.key))];
  }

  /** The init segment of `key`, found elsewhere (its stored index). */
  resolveMap(map: ObjectSlice): void {
    if (!this.maps.has(map.key)) this.maps.set(map.key, map);
  }

  /** The playlist now: the newest segments spanning at least the window, or undefined before the first one. */
  playlist(): MediaPlaylist | undefined {
    const targetDuration = targetDurationFor([this.maxDuration]);
    const span = Math.max(WINDOW_SECONDS, 6 * targetDuration);
    const picked: HlsSegment[] = [];
    let seconds = 0;
    let first: { msn: number; dsn: number } | undefined;
    for (let i = this.segments.length - 1; i >= 0 && seconds < span; i--) {
      const s = this.segments[i]!;
      const map = s.map ?? this.maps.get(s.key);
      if (!map) break; // older ones are no better off
      picked.push({ ...s, map });
      seconds += s.duration;
      first = s;
    }
    if (!first) return undefined;
    picked.reverse();
    return {
      segments: picked,
      targetDuration,
      mediaSequence: first.msn,
      // The first segment's own discontinuity is counted, not tagged.
      discontinuitySequence: first.dsn,
      kind: this.ended ? 'ended' : 'live',
    };
  }
}
