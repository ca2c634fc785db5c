/**
 * CPU cost of the native remuxer on one FLV: the file's packets are pushed through a fresh FlvToFmp4
 * many times (parsing excluded: tags are parsed once up front), and the CPU time is reported per
 * second of media, i.e. what one camera of that bitrate costs.
 *
 *   npx tsx scripts/bench-native-remux.ts in.flv [runs]
 *
 * A realistic input: ffmpeg -f lavfi -i testsrc2=size=1280x720:rate=25 -f lavfi -i sine -t 20
 *   -c:v libx264 -preset ultrafast -b:v 2M -g 50 -c:a aac -f flv cam.flv
 */
import { readFileSync } from 'node:fs';
import { readFlv } from '../src/media/flv/flv-file.js';
import { parseFlvTag } from '../src/media/flv/flv-tag.js';
import type { MediaPacket } from '../src/media/types.js';
import { FlvToFmp4 } from '../src/remux/native/flv-to-fmp4.js';

const [file, runsArg] = process.argv.slice(2);
if (file === undefined) {
  console.error('usage: npx tsx scripts/bench-native-remux.ts in.flv [runs]');
  process.exit(2);
}
const packets: MediaPacket[] = [];
for (const tag of readFlv(readFileSync(file)).tags) {
  const p = parseFlvTag(tag);
  if (p.kind === 'video' || p.kind === 'audio' || p.kind === 'metadata') packets.push(p);
}
const media = packets.filter((p) => p.kind !== 'metadata' && p.packetType === 'frame');
const seconds = (Math.max(...media.map((p) => p.tag.timestamp)) - Math.min(...media.map((p) => p.tag.timestamp))) / 1000;
const bytes = media.reduce((n, p) => n + (p.kind === 'metadata' ? 0 : p.data.length), 0);

function once(): number {
  const r = new FlvToFmp4();
  let out = 0;
  for (const p of packets) for (const o of r.push(p, 0)) out += o.bytes.length;
  for (const o of r.flush()) out += o.bytes.length;
  return out;
}

for (let i = 0; i < 5; i++) once(); // warm-up (JIT)
const runs = Number(runsArg ?? Math.max(5, Math.round(2000 / Math.max(1, seconds))));
const cpu0 = process.cpuUsage();
const t0 = performance.now();
let out = 0;
for (let i = 0; i < runs; i++) out += once();
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const cpuMs = (cpu.user + cpu.system) / 1000;
const perMediaSecond = cpuMs / (runs * seconds);
console.log(`${file}: ${media.length} frames, ${seconds.toFixed(1)} s, ${((bytes * 8) / seconds / 1e6).toFixed(2)} Mbit/s`);
console.log(`${runs} runs: wall ${wallMs.toFixed(0)} ms, CPU ${cpuMs.toFixed(0)} ms (${(out / runs / 1024).toFixed(0)} KiB out per run)`);
console.log(`${((wallMs * 1000) / (runs * packets.length)).toFixed(2)} µs per packet; ${perMediaSecond.toFixed(3)} ms CPU per second of media = ${((perMediaSecond / 1000) * 100).toFixed(3)} % of a core per camera`);
