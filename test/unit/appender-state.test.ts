import { describe, expect, it } from 'vitest';
import { initialState, resume } from '../../src/appender/appender-state.js';
import type { SessionCursor } from '../../src/spool/types.js';

const object = { key: 'cam1/a.mp4', seq: 0, position: 1000, crc: '123', openedAt: 5, index: { key: 'cam1/a.mp4.index.jsonl', position: 80, crc: '9', broken: false } };

describe('appender state from a session cursor', () => {
  it('a fresh cursor gives the initial state and nothing in flight', () => {
    expect(resume({ nextSeq: 0, state: null, inflight: null })).toEqual({ state: initialState(), inflight: null });
  });

  it('this version: the state as written, the fence from the in-flight record', () => {
    const fence = { key: 'cam1/a.mp4', position: 1000, crcBefore: '123', bytes: 50, crcAfter: '456', withInit: false };
    const state = { v: 2, object, nextObjectSeq: 1, gapAfter: 7, trailingIndexes: [] };
    const cursor: SessionCursor = { nextSeq: 3, state, inflight: { fromSeq: 3, uptoSeq: 5, fence } };
    const r = resume(cursor);
    expect(r.state).toEqual(state);
    expect(r.inflight).toEqual({ record: cursor.inflight, fence });
  });

  it('version 1: the in-flight batch lived in the state and is settled against the current object', () => {
    // As the spool lifts it from an old cursor.json: the record's fence is v1's `inflight`.
    const v1inflight = { uptoSeq: 5, fromSeq: 3, position: 1000, bytes: 50, crcAfter: '456', withInit: true };
    const cursor: SessionCursor = {
      nextSeq: 3,
      state: { v: 1, object, nextObjectSeq: 1, inflight: v1inflight, gapAfter: null },
      inflight: { fromSeq: 3, uptoSeq: 5, fence: v1inflight },
    };
    const r = resume(cursor);
    expect(r.state).toEqual({ v: 2, object, nextObjectSeq: 1, gapAfter: null, trailingIndexes: [] });
    expect(r.inflight?.fence).toEqual({ key: 'cam1/a.mp4', position: 1000, crcBefore: '123', bytes: 50, crcAfter: '456', withInit: true });
  });

  it('a record that cannot be settled (no object to name the key) keeps its range, without a fence', () => {
    const record = { fromSeq: 0, uptoSeq: 2, fence: { position: 0, bytes: 10, crcAfter: '1', withInit: true } };
    const r = resume({ nextSeq: 0, state: { v: 1, object: null, nextObjectSeq: 0, inflight: record.fence, gapAfter: null }, inflight: record });
    expect(r.inflight).toEqual({ record, fence: null });
  });

  it('a state of an unknown version is not trusted', () => {
    expect(resume({ nextSeq: 9, state: { v: 99, object }, inflight: null }).state).toEqual(initialState());
  });
});
