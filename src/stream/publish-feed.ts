/**
 * One publish as the ingest sees it: a sink that forwards packets to the current remuxer session.
 * When an ffmpeg remuxer is lost mid-publish the gateway attaches a replacement session, which is
 * first fed the GOP cache (metadata, sequence headers, the GOP since the last keyframe) so its
 * object starts cleanly. Native sessions cannot be lost that way, so nothing is cached for them.
 */
import type { PublishInfo, PublishSink } from '../ingest/types.js';
import type { MediaPacket } from '../media/types.js';
import { GopCache } from './gop-cache.js';
import type { PublishSession } from './publish-session.js';

/** Largest GOP kept for a replacement remuxer. */
const MAX_CACHED_GOP_BYTES = 16 * 1024 * 1024;

export class PublishFeed implements PublishSink {
  readonly info: PublishInfo;
  private session: PublishSession;
  private readonly cache = new GopCache(MAX_CACHED_GOP_BYTES);
  private ended = false;
  private cacheCleared = false;
  private readonly onEnd: (last: PublishSession) => void;

  /** `onEnd` gets the session the publish ended in (the last one after remuxer replacements). */
  constructor(info: PublishInfo, first: PublishSession, onEnd: (last: PublishSession) => void) {
    this.info = info;
    this.session = first;
    this.onEnd = onEnd;
  }

  get isEnded(): boolean {
    return this.ended;
  }


  packet(p: MediaPacket, at: number): void {
    if (this.ended) return;
    // Until the session knows its remuxer, cache too: the probe may still pick ffmpeg.
    if (this.session.remuxKind !== 'native') this.cache.add(p, at);
    this.session.packet(p, at);
    if (this.session.remuxKind === 'native' && !this.cacheCleared) {
      this.cache.clear();
      this.cacheCleared = true;
    }
  }

  /** Points the publish at a replacement session, which gets the cached start first. False once the publish ended. */
  replace(next: PublishSession): boolean {
    if (this.ended) return false;
    this.session = next;
    for (const { p, at } of this.cache.replay()) next.packet(p, at);
    return true;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    void this.session.end();
    this.onEnd(this.session);
  }
}
