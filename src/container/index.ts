export type { ContainerOutput, ContainerSplitter, InitSegment, MediaFragment, TrackInfo, TrackKind, TrailerBoxes, TimelineShifter } from './types.js';
export { ContainerError } from './types.js';
export { DEFAULT_MAX_BOX_BYTES, Fmp4Splitter } from './fmp4/splitter.js';
export type { Fmp4SplitterOptions } from './fmp4/splitter.js';
export { DEFAULT_MAX_FRAGMENT_BYTES, Mpeg2TsSplitter, type Mpeg2TsSplitterOptions } from './ts/splitter.js';
export { TsTimelineShift } from './ts/ts-timeline-shift.js';
