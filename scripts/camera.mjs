#!/usr/bin/env node
// A synthetic camera for when no real one is at hand: ffmpeg testsrc2 + a sine tone, H.264 + AAC,
// 1 s GOP, encoded live and pushed over RTMP like an IP camera would.
//
//   npm run camera -- <stream> <key> [seconds] [rtmp://host:port]
//   npm run camera -- cam1 change-me            # runs until Ctrl-C
//   npm run camera -- cam1 change-me 30 rtmp://10.0.0.5:1935
import { spawn } from 'node:child_process';

const [stream, key, seconds, base = process.env.APPENDCAST_RTMP ?? 'rtmp://127.0.0.1:1935'] = process.argv.slice(2);
if (!stream || !key) {
  console.error('usage: npm run camera -- <stream> <key> [seconds] [rtmp://host:port]');
  process.exit(2);
}
const url = `${base.replace(/\/$/, '')}/live/${encodeURIComponent(stream)}?key=${encodeURIComponent(key)}`;
const args = ['-hide_banner', '-nostdin', '-loglevel', 'warning', '-re',
  '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000',
  ...(seconds ? ['-t', seconds] : []),
  '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p', '-g', '25', '-keyint_min', '25', '-sc_threshold', '0', '-b:v', '1M',
  '-c:a', 'aac', '-b:a', '64k', '-flvflags', 'no_duration_filesize', '-f', 'flv', url];
console.error(`camera: pushing ${stream} to ${base}/live/${stream}${seconds ? ` for ${seconds} s` : ' (Ctrl-C to stop)'}`);
const ff = spawn(process.env.FFMPEG_PATH ?? 'ffmpeg', args, { stdio: ['ignore', 'inherit', 'inherit'] });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => ff.kill('SIGINT'));
ff.on('close', (code) => process.exit(code ?? 1));
