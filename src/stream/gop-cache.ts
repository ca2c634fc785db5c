/**
 * What a replacement remuxer needs to start cleanly in the middle of a publish: the latest
 * metadata and sequence headers, then every packet since the last video keyframe. Held by
 * reference (the packets are in memory already) and bounded: a GOP larger than `maxBytes` is not
 * cached, and a restart then waits for the next keyframe.
 */
import type { MediaPacket } from '../media/types.js';

export class GopCache {
  private readonly maxBytes: number;
  private metadata: MediaPacket | undefined;
  private videoConfig: MediaPacket | undefined;
  private audioConfig: MediaPacket | undefined;
  private gop: Array<{ p: MediaPacket; at: number }> = [];
  private gopBytes = 0;
  /** False while the GOP being received outgrew maxBytes (until the next keyframe). */
  private valid = false;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  get bytes(): number {
    return this.gopBytes;
  }

  add(p: MediaPacket, at: number): void {
    if (p.kind === 'metadata') {
      this.metadata = p;
      return;
    }
    if (p.packetType === 'config') {
      if (p.kind === 'video') this.videoConfig = p;
      else this.audioConfig = p;
      return;
    }
    if (p.kind === 'video' && p.keyframe) {
      this.gop = [];
      this.gopBytes = 0;
      this.valid = true;
    }
    if (!this.valid) return;
    this.gopBytes += p.data.length;
    if (this.gopBytes > this.maxBytes) {
      this.gop = [];
      this.gopBytes = 0;
      this.valid = false;
      return;
    }
    this.gop.push({ p, at });
  }

  /** Forgets everything (the publish went native: nothing will be replayed). */
  clear(): void {
    this.metadata = this.videoConfig = this.audioConfig = undefined;
    this.gop = [];
    this.gopBytes = 0;
    this.valid = false;
  }

  /** Metadata, sequence headers, then the current GOP from its keyframe (empty before the first keyframe). */
  replay(): Array<{ p: MediaPacket; at: number }> {
    const head: Array<{ p: MediaPacket; at: number }> = [];
    const at = this.gop[0]?.at ?? Date.now();
    for (const p of [this.metadata, this.videoConfig, this.audioConfig]) if (p) head.push({ p, at });
    return [...head, ...this.gop];
  }
}
