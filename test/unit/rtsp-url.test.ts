/**
 * RTSP pull sources without a network: URL validation and redaction, the ffprobe/ffmpeg argv per
 * case, the reason set read from ffmpeg's stderr, and the stream list read from ffmpeg's info lines.
 * The stderr lines are the ones ffmpeg 5.1 printed against the GStreamer test server (see
 * test/integration/rtsp-source.test.ts for the live runs).
 */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { AppendcastError } from '../../src/errors.js';
import { classifyAttemptEnd, classifyLines, reasonForStatus, RTSP_DOWN_REASONS } from '../../src/ingest/rtsp/classify-exit.js';
import {
  audioAction,
  InputStreamsReader,
  layoutDiffers,
  parseProbeJson,
  probeArgs,
  rtspFfmpegArgs,
  transportArgs,
  type SourceLayout,
} from '../../src/ingest/rtsp/ffmpeg-rtsp-args.js';
import { makeRedactor, parseRtspUrl, redactUrl, withCredentials } from '../../src/ingest/rtsp/rtsp-url.js';
import { RtspSource, type RtspSourceOptions } from '../../src/ingest/rtsp/rtsp-source.js';

const H264_AAC: SourceLayout = { video: 'h264', audio: 'aac', audioSampleRate: 48000 };
const HEVC_PCMA: SourceLayout = { video: 'hevc', audio: 'pcm_alaw', audioSampleRate: 8000 };
const H264_PCMU: SourceLayout = { video: 'h264', audio: 'pcm_mulaw', audioSampleRate: 8000 };
const H264_ONLY: SourceLayout = { video: 'h264', audio: undefined, audioSampleRate: undefined };

describe('parseRtspUrl', () => {
  it('splits host, port, path and percent-decoded credentials', () => {
    const u = parseRtspUrl('rtsp://admin:p%40ss%3Aw0rd@192.168.1.64:8554/Streaming/Channels/101?transportmode=unicast');
    expect(u).toMatchObject({ host: '192.168.1.64', port: 8554, path: '/Streaming/Channels/101?transportmode=unicast', username: 'admin', password: 'p@ss:w0rd' });
    expect(u.redacted).toBe('rtsp://***@192.168.1.64:8554/Streaming/Channels/101?transportmode=unicast');
    expect(u.url).toBe('rtsp://admin:p%40ss%3Aw0rd@192.168.1.64:8554/Streaming/Channels/101?transportmode=unicast');
  });

  it('defaults the port to 554 and takes URLs without credentials, IPv6 hosts and a raw @ in the password', () => {
    expect(parseRtspUrl('rtsp://cam.local/live')).toMatchObject({ host: 'cam.local', port: 554, username: undefined, password: undefined, redacted: 'rtsp://cam.local/live' });
    expect(parseRtspUrl('rtsp://[::1]:10554/x')).toMatchObject({ host: '[::1]', port: 10554 });
    // ffmpeg splits user info at the last @ before the path (measured), so this is user "u", password "p@ss".
    expect(parseRtspUrl('rtsp://u:p@ss@10.0.0.2/ch1')).toMatchObject({ host: '10.0.0.2', username: 'u', password: 'p@ss', redacted: 'rtsp://***@10.0.0.2/ch1' });
    expect(parseRtspUrl('rtsp://onlyuser@10.0.0.2/ch1')).toMatchObject({ username: 'onlyuser', password: undefined, redacted: 'rtsp://***@10.0.0.2/ch1' });
  });

  it('refuses what is not an RTSP URL, without echoing the password', () => {
    const bad = ['', 'http://u:hunter2@cam/x', 'rtsp://u:hunter2@/x', 'rtsp://u:hunter2@cam:99999/x', 'rtsp://u:hunter2@cam/x\r\nSETUP', 'cam/stream', 'rtsp://u:hunter2@ca m/x'];
    for (const url of bad) {
      let err: unknown;
      try {
        parseRtspUrl(url);
      } catch (e) {
        err = e;
      }
      expect(err, url).toBeInstanceOf(AppendcastError);
      expect((err as AppendcastError).code).toBe('APC_ERR_CONFIG_INVALID');
      expect((err as Error).message).not.toContain('hunter2');
    }
  });
});

describe('withCredentials', () => {
  it('percent-encodes any user and password into a URL without credentials, and parses back to them', () => {
    const url = withCredentials('rtsp://10.0.0.7:554/ch1?subtype=0', 'ad min', 'p@ss:w/rd%!');
    expect(url).toBe('rtsp://ad%20min:p%40ss%3Aw%2Frd%25!@10.0.0.7:554/ch1?subtype=0');
    expect(parseRtspUrl(url)).toMatchObject({ username: 'ad min', password: 'p@ss:w/rd%!', host: '10.0.0.7', path: '/ch1?subtype=0' });
    expect(withCredentials('rtsp://cam/x', 'viewer')).toBe('rtsp://viewer@cam/x');
    expect(() => withCredentials('rtsp://a:b@cam/x', 'u', 'hunter2')).toThrow(/already has credentials/);
  });
});

describe('redaction', () => {
  it('redactUrl hides user info and secret-looking query parameters', () => {
    expect(redactUrl('rtsp://admin:12345@cam:554/h264')).toBe('rtsp://***@cam:554/h264');
    expect(redactUrl('rtsp://cam/onvif1?user=admin&password=12345&channel=1')).toBe('rtsp://cam/onvif1?user=admin&password=***&channel=1');
    expect(redactUrl('rtsp://cam/live?token=abc&pwd=x&subtype=0')).toBe('rtsp://cam/live?token=***&pwd=***&subtype=0');
    expect(redactUrl('rtsp://cam/live')).toBe('rtsp://cam/live');
  });

  it('a redactor scrubs ffmpeg lines: URLs anywhere, and the password alone (raw, decoded, encoded)', () => {
    const url = 'rtsp://alice:s3cr3t-P%40ss@127.0.0.1:8554/auth/h264aac';
    const r = makeRedactor(url);
    const lines = [
      "[info] Input #0, rtsp, from 'rtsp://alice:s3cr3t-P%40ss@127.0.0.1:8554/auth/h264aac':",
      '[error] rtsp://alice:s3cr3t-P%40ss@127.0.0.1:8554/auth/h264aac: Server returned 401 Unauthorized (authorization failed)',
      'some tool printed s3cr3t-P@ss on its own',
      'and s3cr3t-P%40ss too',
    ];
    const out = lines.map(r);
    expect(out[0]).toBe("[info] Input #0, rtsp, from 'rtsp://***@127.0.0.1:8554/auth/h264aac':");
    expect(out[1]).toBe('[error] rtsp://***@127.0.0.1:8554/auth/h264aac: Server returned 401 Unauthorized (authorization failed)');
    expect(out[2]).toBe('some tool printed *** on its own');
    expect(out[3]).toBe('and *** too');
    for (const l of out) expect(l).not.toMatch(/s3cr3t/);
    // Without credentials, text is left alone.
    expect(makeRedactor('rtsp://cam/x')('[error] rtsp://cam/x: Connection refused')).toBe('[error] rtsp://cam/x: Connection refused');
  });
});

describe('ffmpeg argv', () => {
  const base = { url: 'rtsp://u:pw@cam/s', timeoutMs: 10_000, fragmentDurationMs: null };

  it('transport: tcp, udp, and auto = TCP first with UDP fallback', () => {
    expect(transportArgs('tcp')).toEqual(['-rtsp_transport', 'tcp']);
    expect(transportArgs('udp')).toEqual(['-rtsp_transport', 'udp']);
    expect(transportArgs('auto')).toEqual(['-rtsp_transport', 'tcp+udp', '-rtsp_flags', 'prefer_tcp']);
  });

  it('H.264 + AAC, audio auto: everything copied; -timeout in microseconds before -i', () => {
    const a = rtspFfmpegArgs({ ...base, transport: 'tcp', layout: H264_AAC, audio: 'auto' });
    expect(a.join(' ')).toBe(
      '-hide_banner -nostdin -loglevel level+info -nostats -progress pipe:3 -stats_period 1 -rtsp_transport tcp -timeout 10000000 ' +
        '-i rtsp://u:pw@cam/s -map 0:v:0? -map 0:a:0? -c:v copy -c:a copy ' +
        '-f mp4 -movflags +frag_keyframe+empty_moov+default_base_moof+skip_trailer pipe:1',
    );
    expect(a).not.toContain('-stimeout');
  });

  it('H.265 + G.711 A-law, audio auto: hvc1 tag, audio to AAC at 32k (8 kHz)', () => {
    const a = rtspFfmpegArgs({ ...base, transport: 'auto', layout: HEVC_PCMA, audio: 'auto', fragmentDurationMs: 500 });
    expect(a.join(' ')).toContain('-c:v copy -tag:v hvc1 -c:a aac -b:a 32k');
    expect(a.join(' ')).toContain('-frag_duration 500000 pipe:1');
    expect(a.indexOf('-timeout')).toBeLessThan(a.indexOf('-i'));
  });

  it('audio policies: copy, aac, drop; H.264 never gets the hvc1 tag', () => {
    expect(rtspFfmpegArgs({ ...base, transport: 'tcp', layout: H264_PCMU, audio: 'copy' }).join(' ')).toContain('-c:v copy -c:a copy');
    expect(rtspFfmpegArgs({ ...base, transport: 'tcp', layout: H264_AAC, audio: 'aac' }).join(' ')).toContain('-c:a aac -b:a 64k');
    const drop = rtspFfmpegArgs({ ...base, transport: 'tcp', layout: H264_AAC, audio: 'drop' });
    expect(drop.join(' ')).toContain('-allowed_media_types video -i');
    expect(drop.join(' ')).toContain('-map 0:v:0? -c:v copy -an');
    expect(drop).not.toContain('0:a:0?');
    const none = rtspFfmpegArgs({ ...base, transport: 'tcp', layout: H264_ONLY, audio: 'auto' });
    expect(none).toContain('-an');
    expect(none).not.toContain('-allowed_media_types');
    for (const l of [H264_AAC, H264_PCMU, H264_ONLY]) expect(rtspFfmpegArgs({ ...base, transport: 'tcp', layout: l, audio: 'auto' })).not.toContain('hvc1');
  });

  it('audioAction: auto copies AAC only and transcodes the rest', () => {
    expect(audioAction('auto', H264_AAC)).toBe('copy');
    expect(audioAction('auto', HEVC_PCMA)).toBe('aac');
    expect(audioAction('auto', H264_PCMU)).toBe('aac');
    expect(audioAction('auto', { ...H264_AAC, audio: 'aac_latm' })).toBe('aac');
    expect(audioAction('auto', H264_ONLY)).toBe('none');
    expect(audioAction('copy', HEVC_PCMA)).toBe('copy');
    expect(audioAction('aac', H264_AAC)).toBe('aac');
    expect(audioAction('drop', H264_AAC)).toBe('none');
  });

  it('the probe: DESCRIBE + SETUP only, JSON out', () => {
    const p = probeArgs({ url: 'rtsp://cam/s', transport: 'udp', timeoutMs: 3000 });
    expect(p.join(' ')).toBe(
      '-hide_banner -loglevel level+error -rtsp_transport udp -timeout 3000000 -initial_pause 1 -nofind_stream_info ' +
        '-show_entries stream=index,codec_type,codec_name,sample_rate -of json rtsp://cam/s',
    );
    const json = '{"programs":[],"streams":[{"index":0,"codec_name":"hevc","codec_type":"video"},{"index":1,"codec_name":"pcm_alaw","codec_type":"audio","sample_rate":"8000"}]}';
    expect(parseProbeJson(json)).toEqual(HEVC_PCMA);
    expect(parseProbeJson('{}')).toBeUndefined();
    expect(parseProbeJson('not json')).toBeUndefined();
  });
});

describe('ffmpeg stderr', () => {
  it('reads the input stream list (and only the input one)', () => {
    const r = new InputStreamsReader();
    const lines = [
      '[info] ffmpeg stats and -progress period set to 1.',
      "[info] Input #0, rtsp, from 'rtsp://***@127.0.0.1:40065/h265pcma':",
      '[info]   Metadata:',
      '[info]   Stream #0:0: Video: hevc (Main), yuv420p(tv, smpte170m), 320x240 [SAR 1:1 DAR 4:3], 25 fps, 25 tbr, 90k tbn',
      '[info]   Stream #0:1: Audio: pcm_alaw, 8000 Hz, mono, s16, 64 kb/s',
      '[info] Stream mapping:',
      '[info]   Stream #0:0: Video: hevc (Main) (hvc1 / 0x31637668), 320x240',
      '[info]   Stream #0:1: Audio: aac (LC) (mp4a / 0x6134706D), 8000 Hz, mono, fltp, 32 kb/s',
    ];
    const done = lines.map((l) => r.push(l));
    expect(done.indexOf(true)).toBe(5);
    expect(r.opened).toBe(true);
    expect(r.layout).toEqual(HEVC_PCMA);
    const r7 = new InputStreamsReader(); // ffmpeg 7's decorations: [0x1] ids and (und) languages
    for (const l of ["[info] Input #0, rtsp, from 'x':", '[info]   Stream #0:0[0x1](und): Video: h264 (High), yuv420p', '[info]   Stream #0:1[0x2](eng): Audio: aac (LC), 48000 Hz, mono', "[info] Output #0, mp4, to 'pipe:1':"]) r7.push(l);
    expect(r7.layout).toEqual(H264_AAC);
  });

  it('layoutDiffers ignores audio when it is dropped', () => {
    expect(layoutDiffers(H264_AAC, H264_AAC, 'auto')).toBe(false);
    expect(layoutDiffers(H264_AAC, HEVC_PCMA, 'auto')).toBe(true);
    expect(layoutDiffers(H264_AAC, H264_PCMU, 'auto')).toBe(true);
    expect(layoutDiffers(H264_AAC, H264_PCMU, 'drop')).toBe(false);
  });

  it('classifies the lines ffmpeg prints into the closed reason set', () => {
    const c = (lines: string[], phase: 'connecting' | 'opened' | 'streaming' = 'connecting') => classifyLines(lines, phase)?.reason;
    expect(c(['[rtsp @ 0x1] [error] method DESCRIBE failed: 401 Unauthorized', '[error] rtsp://***@h/p: Server returned 401 Unauthorized (authorization failed)'])).toBe('auth');
    expect(c(['[error] rtsp://h/p: Server returned 403 Forbidden (access denied)'])).toBe('auth');
    expect(c(['[rtsp @ 0x1] [error] method DESCRIBE failed: 404 Not Found', '[error] rtsp://h/p: Server returned 404 Not Found'])).toBe('not-found');
    expect(c(['[rtsp @ 0x1] [error] method SETUP failed: 461 Unsupported transport', '[error] rtsp://h/p: Protocol not supported'])).toBe('rtsp-error');
    expect(c(['[error] rtsp://h/p: Server returned 5XX Server Error reply'])).toBe('rtsp-error');
    expect(c(['[tcp @ 0x1] [error] Connection to tcp://127.0.0.1:1?timeout=3000000 failed: Connection refused', '[error] rtsp://127.0.0.1:1/x: Connection refused'])).toBe('unreachable');
    expect(c(['[tcp @ 0x1] [error] Failed to resolve hostname nonexistent.invalid: Name or service not known'])).toBe('unreachable');
    expect(c(['[error] rtsp://h/p: Connection timed out'], 'connecting')).toBe('unreachable');
    expect(c(['[error] rtsp://h/p: Connection timed out'], 'streaming')).toBe('stall');
    expect(c(['[mp4 @ 0x1] [error] Could not find tag for codec pcm_alaw in stream #1, codec not currently supported in container'], 'opened')).toBe('codec');
    expect(c(['[mp4 @ 0x1] [error] Tag hvc1 incompatible with output codec id \'27\' (avc1)'], 'opened')).toBe('codec');
    expect(c(['[error] rtsp://h/p: Invalid data found when processing input'], 'connecting')).toBe('rtsp-error');
    expect(c(['[warning] Timestamps are unset in a packet for stream 0.'], 'streaming')).toBeUndefined();
    expect(reasonForStatus(407)).toBe('auth');
    expect(reasonForStatus(410)).toBe('not-found');
    expect(reasonForStatus(454)).toBe('rtsp-error');
  });

  it('classifies an attempt end: watchdog, eof, exit', () => {
    const end = { lines: [] as string[], code: 0, signal: null, phase: 'streaming' as const, watchdog: false };
    expect(classifyAttemptEnd(end).reason).toBe('eof');
    expect(classifyAttemptEnd({ ...end, watchdog: true }).reason).toBe('stall');
    expect(classifyAttemptEnd({ ...end, watchdog: true, phase: 'opened' }).reason).toBe('stall');
    expect(classifyAttemptEnd({ ...end, watchdog: true, phase: 'connecting' }).reason).toBe('unreachable');
    expect(classifyAttemptEnd({ ...end, code: 1, lines: ['[error] something odd'] })).toEqual({ reason: 'exit', evidence: '[error] something odd' });
    expect(classifyAttemptEnd({ ...end, code: null, signal: 'SIGSEGV' }).reason).toBe('exit');
    expect(classifyAttemptEnd({ ...end, code: 0, phase: 'connecting' }).reason).toBe('exit');
    // A finite label set, each a valid Prometheus label value.
    expect(new Set(RTSP_DOWN_REASONS).size).toBe(8);
    for (const r of RTSP_DOWN_REASONS) expect(r).toMatch(/^[a-z-]+$/);
  });
});

describe('RtspSource options', () => {
  const ok: RtspSourceOptions = {
    streamId: 'cam1', url: 'rtsp://u:hunter2@cam/s', transport: 'tcp', audio: 'auto', ffmpegPath: 'ffmpeg', stallTimeoutMs: 5000,
    backoff: { baseMs: 500, maxMs: 30_000 }, fragmentDurationMs: null, logger: pino({ level: 'silent' }),
  };

  it('are validated in the constructor, which starts nothing; errors never show the password', () => {
    const s = new RtspSource(ok, () => ({ bytes() {}, outputs() {}, end() {} }));
    expect(s.pid).toBeUndefined();
    expect(s.up).toBe(false);
    expect(s.displayUrl).toBe('rtsp://***@cam/s');
    expect(s.stats).toMatchObject({ probes: 0, spawns: 0, sessions: 0 });
    const bad: Array<Partial<RtspSourceOptions>> = [
      { transport: 'sctp' as never }, { audio: 'opus' as never }, { stallTimeoutMs: 0 }, { backoff: { baseMs: 0, maxMs: 1 } },
      { backoff: { baseMs: 2000, maxMs: 1000 } }, { fragmentDurationMs: -1 }, { url: 'rtmp://u:hunter2@cam/s' },
    ];
    for (const b of bad) {
      let err: unknown;
      try {
        new RtspSource({ ...ok, ...b }, () => ({ bytes() {}, outputs() {}, end() {} }));
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(b)).toBeInstanceOf(AppendcastError);
      expect((err as Error).message).not.toContain('hunter2');
    }
  });

  it('close() before start() resolves and start() after close() does nothing', async () => {
    const s = new RtspSource(ok, () => ({ bytes() {}, outputs() {}, end() {} }));
    await s.close();
    s.start();
    expect(s.pid).toBeUndefined();
    expect(s.stats.probes).toBe(0);
  });
});
