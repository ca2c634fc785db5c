import type { IndexLine } from '../appender/index-writer.js';
import { Fmp4Splitter } from '../container/fmp4/splitter.js';
import { Mpeg2TsSplitter } from '../container/ts/splitter.js';
import type { ContainerSplitter } from '../container/types.js';
import type { AppendableStore } from '../store/types.js';
import { readIndexLines } from './index-lines.js';
import { readRange } from './store-io.js';

/** Where a live viewer starts in a growing object: its init segment, then the newest keyframe fragment. */
export interface LiveStart {
  /** The init segment's bytes in the object, [start, end) (undefined: read from the object's start). */
  init: { start: number; end: number } | undefined;
  /** Offset of the newest keyframe fragment the index knows (0: from the start). */
  from: number;
}

/** Media past the index's last line read to find newer keyframes (the index trails by up to its batch interval). */
const MAX_SCAN_BYTES = 32 << 20;

/**
 * From the object's sidecar index: the last init line and the newest keyframe fragment after it;
 * then, as the index trails the media by up to its batch interval, the media after that fragment is
 * read and split (fMP4 or MPEG-TS, by the key) to find a newer keyframe fragment. No index, or an
 * unreadable one: from the start.
 */
export async function liveStart(store: AppendableStore, key: string): Promise<LiveStart> {
  const fromStart: LiveStart = { init: undefined, from: 0 };
  let init: IndexLine | undefined;
  let key_: IndexLine | undefined;
  for (const line of await readIndexLines(store, key).catch(() => [])) {
    if (line.type === 'init') {
      init = line;
      key_ = undefined;
    } else if (line.type === 'fragment' && line.k === true) {
      key_ = line;
    }
  }
  if (!init || !key_ || !Number.isSafeInteger(init.offset) || !Number.isSafeInteger(key_.offset)) return fromStart;
  const initRange = { start: init.offset, end: init.offset + init.length };
  return { init: initRange, from: await newestKeyframe(store, key, initRange, key_.offset) };
}

/** The offset of the newest complete keyframe fragment at or after `from` (`from` itself when none is found). */
async function newestKeyframe(store: AppendableStore, key: string, init: { start: number; end: number }, from: number): Promise<number> {
  const size = (await store.head(key))?.size ?? 0;
  if (size <= from || size - from > MAX_SCAN_BYTES) return from;
  const splitter: ContainerSplitter = key.endsWith('.ts') ? new Mpeg2TsSplitter() : new Fmp4Splitter();
  try {
    const initBytes = await readRange(store, key, init.start, init.end);
    let at = from - initBytes.length; // stream offset → object offset of what follows the init
    let newest = from;
    for (const out of splitter.push(Buffer.concat([initBytes, await readRange(store, key, from, size)]))) {
      if (out.type === 'fragment' && out.keyframe && at >= from) newest = at;
      at += out.bytes.length;
    }
    return newest;
  } catch {
    return from; // not what the index said it is: start where the index points
  }
}
