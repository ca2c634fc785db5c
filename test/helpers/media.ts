import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * `ffmpeg -v error -i FILE -f null -`: the decoder's complaints, '' when the media is clean. The
 * video frames go out on a 90 kHz time base: on the default (1/frame rate) two frames of a jittery
 * source closer than one nominal frame apart (RTP over UDP under load) round to the same tick and
 * the null muxer reports "non monotonically increasing dts" about its own output, not the file.
 * Equal timestamps in the file itself are still reported.
 */
export async function decodeErrors(file: string): Promise<string> {
  const { stderr } = await run(process.env.FFMPEG_PATH ?? 'ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-i', file, '-enc_time_base:v', '1:90000', '-f', 'null', '-'], { maxBuffer: 16 << 20 });
  return stderr.trim();
}

export interface ProbeResult {
  /** End of the media (ffprobe's format duration counts from 0, not from start_time). */
  duration: number;
  startTime: number;
  streams: Array<{ codec_type: string; codec_name: string; nb_read_frames?: string }>;
}

export async function probe(file: string, countFrames = false): Promise<ProbeResult> {
  const args = ['-v', 'error', '-show_entries', 'format=duration,start_time:stream=codec_type,codec_name' + (countFrames ? ',nb_read_frames' : ''), '-of', 'json'];
  if (countFrames) args.push('-count_frames');
  const { stdout } = await run('ffprobe', [...args, file], { maxBuffer: 16 << 20 });
  const j = JSON.parse(stdout) as { format: { duration: string; start_time: string }; streams: ProbeResult['streams'] };
  return { duration: Number(j.format.duration), startTime: Number(j.format.start_time), streams: j.streams };
}

/**
 * Every packet's time of one stream, in file order (ffprobe): 'v' or 'a', DTS or PTS. MPEG-TS output
 * ends lines with a comma and interleaves blank lines: only the numbers are kept.
 */
export async function packetTimes(file: string, stream: 'v' | 'a' = 'v', field: 'dts_time' | 'pts_time' = 'dts_time'): Promise<number[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', `${stream}:0`, '-show_entries', `packet=${field}`, '-of', 'csv=p=0', file], { maxBuffer: 64 << 20 });
  return stdout.split('\n').map((l) => Number.parseFloat(l)).filter((n) => Number.isFinite(n));
}
