/**
 * Makes the FLV → fMP4 equivalence corpus: short (3.5 s, 320x240 testsrc2 at 25 fps, 1 s GOP) FLV
 * files of the kinds cameras push, each with the reference fragmented MP4 that ffmpeg's own
 * `-c copy` remux makes from the same media (what the gateway's ffmpeg path produces today).
 *
 *   npx tsx scripts/make-remux-corpus.ts <outDir> [case…]
 *
 * Writes <outDir>/<case>.flv, <outDir>/<case>.ref.mp4 and <outDir>/manifest.json. Needs ffmpeg
 * (FFMPEG_PATH or PATH) with libx264, libx265 and the native aac encoder; single-threaded, bitexact
 * encodes. H.265 cases: ffmpeg 5.1 can neither write nor read HEVC in FLV, so libx265 encodes to
 * fragmented MP4 (`-tag:v hvc1`), scripts/mp4-to-flv.ts turns that into FLV with our FLV writer, and
 * the reference is ffmpeg's remux of that MP4 (the same length-prefixed samples).
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { mp4ToFlvTags, readFragmentedMp4, writeFlvFile } from './mp4-to-flv.js';

const run = promisify(execFile);
const FFMPEG = process.env.FFMPEG_PATH ?? 'ffmpeg';

export interface CorpusCase {
  name: string;
  description: string;
  /** The FLV our remuxer reads. */
  flv: string;
  /** ffmpeg's `-c copy` fragmented MP4 of the same media. */
  reference: string;
  /** What ffmpeg remuxed to make the reference: the FLV itself, or (H.265) the source MP4. */
  referenceFrom: 'flv' | 'mp4';
  video: 'h264' | 'hevc' | null;
  audio: { sampleRate: number; channels: number } | null;
}

export interface CaseSpec {
  name: string;
  description: string;
  video: 'h264' | 'h264-bframes' | 'hevc-enhanced' | 'hevc-legacy' | null;
  audio: { sampleRate: number; channels: number; delaySeconds?: number } | null;
}

export const CORPUS_CASES: readonly CaseSpec[] = [
  { name: 'h264-aac48k-stereo', description: 'H.264 without B-frames, AAC 48 kHz stereo', video: 'h264', audio: { sampleRate: 48000, channels: 2 } },
  { name: 'h264-bframes-aac48k', description: 'H.264 with B-frames (-bf 2, CTS ≠ 0), AAC 48 kHz stereo', video: 'h264-bframes', audio: { sampleRate: 48000, channels: 2 } },
  { name: 'h264-aac44k-mono', description: 'H.264, AAC 44.1 kHz mono', video: 'h264', audio: { sampleRate: 44100, channels: 1 } },
  { name: 'h264-video-only', description: 'H.264 with B-frames, no audio', video: 'h264-bframes', audio: null },
  { name: 'h264-late-audio', description: 'H.264, AAC starting 1.5 s after video (-itsoffset 1.5)', video: 'h264', audio: { sampleRate: 48000, channels: 2, delaySeconds: 1.5 } },
  { name: 'aac-only', description: 'AAC 48 kHz stereo, no video', video: null, audio: { sampleRate: 48000, channels: 2 } },
  { name: 'hevc-enhanced-rtmp', description: 'H.265 (B-frames) as enhanced RTMP (hvc1 FourCC), AAC 48 kHz', video: 'hevc-enhanced', audio: { sampleRate: 48000, channels: 2 } },
  { name: 'hevc-legacy-id12', description: 'H.265 (B-frames) as legacy codec id 12, AAC 48 kHz', video: 'hevc-legacy', audio: { sampleRate: 48000, channels: 2 } },
];

const DURATION = '3.5';
const QUIET = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y'];
const BITEXACT = ['-fflags', '+bitexact', '-flags:v', '+bitexact', '-flags:a', '+bitexact'];
const FRAG = ['-movflags', '+frag_keyframe+empty_moov+default_base_moof'];

async function ffmpeg(args: string[]): Promise<void> {
  await run(FFMPEG, [...QUIET, ...args], { maxBuffer: 16 << 20 });
}

function inputs(spec: CaseSpec): string[] {
  const args: string[] = [];
  if (spec.video !== null) args.push('-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25');
  if (spec.audio !== null) {
    if (spec.audio.delaySeconds !== undefined) args.push('-itsoffset', String(spec.audio.delaySeconds));
    args.push('-f', 'lavfi', '-i', `sine=frequency=1000:sample_rate=${spec.audio.sampleRate}`);
  }
  args.push('-t', DURATION);
  if (spec.video !== null && spec.audio !== null) args.push('-map', '0:v', '-map', '1:a');
  return args;
}

function encoders(spec: CaseSpec): string[] {
  const args: string[] = [];
  switch (spec.video) {
    case 'h264':
      args.push('-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '0');
      break;
    case 'h264-bframes':
      args.push('-c:v', 'libx264', '-preset', 'veryfast', '-bf', '2');
      break;
    case 'hevc-enhanced':
    case 'hevc-legacy':
      args.push('-c:v', 'libx265', '-preset', 'ultrafast', '-tag:v', 'hvc1',
        '-x265-params', 'keyint=25:min-keyint=25:bframes=2:scenecut=0:log-level=error:pools=1:frame-threads=1');
      break;
    case null:
      break;
  }
  if (spec.video === 'h264' || spec.video === 'h264-bframes') {
    args.push('-threads', '1', '-g', '25', '-keyint_min', '25', '-sc_threshold', '0');
  }
  if (spec.video !== null) args.push('-pix_fmt', 'yuv420p', '-b:v', '200k');
  if (spec.audio !== null) args.push('-c:a', 'aac', '-b:a', '64k', '-ac', String(spec.audio.channels));
  return [...args, ...BITEXACT];
}

async function makeCase(outDir: string, spec: CaseSpec): Promise<CorpusCase> {
  const flv = join(outDir, `${spec.name}.flv`);
  const reference = join(outDir, `${spec.name}.ref.mp4`);
  const hevc = spec.video === 'hevc-enhanced' || spec.video === 'hevc-legacy';
  if (hevc) {
    const source = join(outDir, `${spec.name}.src.mp4`);
    await ffmpeg([...inputs(spec), ...encoders(spec), '-f', 'mp4', ...FRAG, source]);
    const tags = mp4ToFlvTags(readFragmentedMp4(await readFile(source)), { video: spec.video === 'hevc-enhanced' ? 'enhanced' : 'legacy' });
    await writeFile(flv, writeFlvFile(tags));
    await ffmpeg(['-i', source, '-c', 'copy', '-f', 'mp4', ...FRAG, '-fflags', '+bitexact', reference]);
  } else {
    await ffmpeg([...inputs(spec), ...encoders(spec), '-f', 'flv', flv]);
    await ffmpeg(['-i', flv, '-c', 'copy', '-f', 'mp4', ...FRAG, '-fflags', '+bitexact', reference]);
  }
  return {
    name: spec.name,
    description: spec.description,
    flv,
    reference,
    referenceFrom: hevc ? 'mp4' : 'flv',
    video: spec.video === null ? null : hevc ? 'hevc' : 'h264',
    audio: spec.audio === null ? null : { sampleRate: spec.audio.sampleRate, channels: spec.audio.channels },
  };
}

/** Makes the named cases (default: all) into `outDir`, two at a time (two cores), and writes manifest.json. */
export async function makeRemuxCorpus(outDir: string, only?: readonly string[]): Promise<CorpusCase[]> {
  await mkdir(outDir, { recursive: true });
  const specs = CORPUS_CASES.filter((c) => only === undefined || only.length === 0 || only.includes(c.name));
  const cases: CorpusCase[] = new Array<CorpusCase>(specs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < specs.length; i = next++) cases[i] = await makeCase(outDir, specs[i] as CaseSpec);
  };
  await Promise.all([worker(), worker()]);
  await writeFile(join(outDir, 'manifest.json'), JSON.stringify(cases, null, 2));
  return cases;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [outDir, ...only] = process.argv.slice(2);
  if (outDir === undefined) {
    console.error('usage: npx tsx scripts/make-remux-corpus.ts <outDir> [case…]');
    process.exit(2);
  }
  makeRemuxCorpus(outDir, only).then(
    (cases) => {
      for (const c of cases) console.log(`${c.name.padEnd(22)} ${c.flv}  ref ${c.reference}`);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
