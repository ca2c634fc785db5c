/**
 * Reads what the splitter needs from `moov`: per track its id, kind, timescale and codec fourcc
 * (tkhd, mdhd, hdlr, stsd), plus the `trex` defaults that fragments fall back on.
 */
import type { TrackInfo, TrackKind } from '../types.js';
import { ContainerError } from '../types.js';
import { BoxFieldReader, childBoxes, findChild } from './box-reader.js';
import type { BoxRange } from './box-reader.js';

/** Sample defaults from `mvex/trex`; a fragment's `tfhd` may override them. */
export interface TrackDefaults {
  sampleDuration: number;
  sampleFlags: number;
}

export interface MovieInfo {
  tracks: TrackInfo[];
  defaults: Map<number, TrackDefaults>;
}

const HANDLER_KIND: Record<string, TrackKind> = { vide: 'video', soun: 'audio' };

/** `buf` holds exactly one moov box; `base` is its stream offset. */
export function parseMoov(buf: Buffer, base: number): MovieInfo {
  const moov = childBoxes(buf, 0, buf.length, base)[0];
  if (moov === undefined || moov.type !== 'moov') {
    throw new ContainerError(`expected moov at offset ${base}`, { offset: base, unit: moov?.type });
  }
  const tracks: TrackInfo[] = [];
  const defaults = new Map<number, TrackDefaults>();
  for (const child of childBoxes(buf, moov.payload, moov.end, base)) {
    if (child.type === 'trak') tracks.push(parseTrak(buf, child, base));
    if (child.type === 'mvex') {
      for (const trex of childBoxes(buf, child.payload, child.end, base)) {
        if (trex.type !== 'trex') continue;
        const r = new BoxFieldReader(buf, trex, base);
        r.fullBox();
        const trackId = r.u32();
        r.u32(); // default_sample_description_index
        const sampleDuration = r.u32();
        r.u32(); // default_sample_size
        defaults.set(trackId, { sampleDuration, sampleFlags: r.u32() });
      }
    }
  }
  return { tracks, defaults };
}

function required(buf: Buffer, parent: BoxRange, type: string, base: number): BoxRange {
  const box = findChild(buf, parent, type, base);
  if (box === undefined) {
    throw new ContainerError(`box ${parent.type} at offset ${base + parent.start} has no ${type}`, {
      offset: base + parent.start,
      unit: parent.type,
    });
  }
  return box;
}

function parseTrak(buf: Buffer, trak: BoxRange, base: number): TrackInfo {
  const tkhd = new BoxFieldReader(buf, required(buf, trak, 'tkhd', base), base);
  const { version: tkhdVersion } = tkhd.fullBox();
  tkhd.skip(tkhdVersion === 1 ? 16 : 8); // creation + modification time
  const id = tkhd.u32();

  const mdia = required(buf, trak, 'mdia', base);
  const mdhd = new BoxFieldReader(buf, required(buf, mdia, 'mdhd', base), base);
  const { version: mdhdVersion } = mdhd.fullBox();
  mdhd.skip(mdhdVersion === 1 ? 16 : 8);
  const timescale = mdhd.u32();
  if (timescale === 0) {
    throw new ContainerError(`track ${id} has timescale 0 (mdhd at offset ${base + mdia.start})`, { offset: base + mdia.start, unit: 'mdhd' });
  }

  const hdlr = new BoxFieldReader(buf, required(buf, mdia, 'hdlr', base), base);
  hdlr.fullBox();
  hdlr.u32(); // pre_defined
  const kind = HANDLER_KIND[hdlr.fourcc()] ?? 'other';

  const stbl = required(buf, required(buf, required(buf, mdia, 'minf', base), 'stbl', base), 'stsd', base);
  const stsd = new BoxFieldReader(buf, stbl, base);
  stsd.fullBox();
  const entries = stsd.u32();
  let codec = '';
  if (entries > 0) {
    stsd.u32(); // first sample entry's size
    codec = stsd.fourcc();
  }
  return { id, kind, timescale, codec };
}
