import { describe, expect, it } from 'vitest';
import { listPrefix } from '../../src/playback/object-finder.js';

describe('listPrefix: where a stream\'s objects are listed from', () => {
  it('is the key template up to its first placeholder other than {stream}', () => {
    expect(listPrefix('{stream}/{yyyy}/{MM}/{dd}/{stream}-{HH}{mm}{ss}.mp4', 'cam1')).toBe('cam1/');
    expect(listPrefix('site-a/{stream}/{yyyy}{MM}{dd}/{seq}.ts', 'gate')).toBe('site-a/gate/');
    expect(listPrefix('{yyyy}/{stream}.mp4', 'cam1')).toBe('');
    expect(listPrefix('fixed/{stream}.mp4', 'cam1')).toBe('fixed/cam1.mp4');
  });
});
