// appendcast's web page: streams, a live player, a timeline of recordings and clip downloads.
// Plain browser JavaScript (no build step); hls.js is served by the gateway at /vendor/hls.min.js.
/* global Hls */

const $ = (id) => document.getElementById(id);
const video = $('video');

/** What the page is doing, for people (the status line) and for tests (window.appendcast). */
const state = {
  stream: null,
  mode: 'idle', // idle | live | vod
  errors: [],
  latencyMs: null,
  vodEnded: false,
  source: null,
};
window.appendcast = state;

let hls = null;
let streams = [];

async function getJson(url) {
  const res = await fetch(url, { credentials: 'same-origin' });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

function setStatus(text) {
  $('status').textContent = text;
}

function fmtLag(s) {
  if (s === null || s === undefined) return '–';
  return s < 10 ? `${s.toFixed(1)} s` : `${Math.round(s)} s`;
}

async function refreshStreams() {
  try {
    streams = (await getJson('/api/v1/streams')).streams.filter((s) => s.configured);
  } catch (err) {
    setStatus(`Cannot list streams: ${err.message}`);
    return;
  }
  const body = $('streams').querySelector('tbody');
  body.replaceChildren(
    ...streams.map((s) => {
      const tr = document.createElement('tr');
      tr.dataset.stream = s.id;
      if (s.id === state.stream) tr.classList.add('selected');
      const halted = s.sessions.some((v) => v.halted);
      const status = halted ? ['halted', 'appends halted'] : s.publishing ? ['up', 'publishing'] : ['down', s.enabled ? 'idle' : 'disabled'];
      for (const [text, cls] of [[s.id, ''], [status[1], status[0]], [fmtLag(s.lag?.seconds), '']]) {
        const td = document.createElement('td');
        td.textContent = text;
        if (cls) td.className = cls;
        tr.append(td);
      }
      tr.addEventListener('click', () => selectStream(s.id));
      return tr;
    }),
  );
}

function stopPlayer() {
  if (hls) hls.destroy();
  hls = null;
  state.latencyMs = null;
  state.vodEnded = false;
}

/** Plays an HLS playlist: MSE through hls.js, or natively where the browser can (Safari). */
function play(src, mode) {
  stopPlayer();
  state.mode = mode;
  state.source = src;
  state.errors = [];
  if (window.Hls && Hls.isSupported()) {
    // Two target durations behind the live edge; a player that started further back (the stream had
    // only a few segments yet) catches up by playing up to 10 % faster instead of staying behind.
    hls = new Hls({ liveSyncDurationCount: 2, liveMaxLatencyDurationCount: 6, maxLiveSyncPlaybackRate: 1.1, manifestLoadingMaxRetry: 6, levelLoadingMaxRetry: 6 });
    hls.on(Hls.Events.ERROR, (_e, data) => {
      state.errors.push({ type: data.type, details: data.details, fatal: data.fatal });
      if (data.fatal) setStatus(`Playback error: ${data.details}`);
    });
    hls.loadSource(src);
    hls.attachMedia(video);
  } else {
    video.src = src;
  }
  void video.play().catch(() => undefined);
}

function selectStream(id) {
  state.stream = id;
  for (const tr of $('streams').querySelectorAll('tbody tr')) tr.classList.toggle('selected', tr.dataset.stream === id);
  goLive();
  void drawTimeline();
}

function goLive() {
  if (!state.stream) return;
  $('now-playing').textContent = `${state.stream} — live`;
  play(`/live/${encodeURIComponent(state.stream)}/index.m3u8`, 'live');
}

/** Plays `stream` from `start` (ms) to `end` (ms) from the recordings. */
function playRange(start, end) {
  if (!state.stream) return;
  const q = new URLSearchParams({ start: new Date(start).toISOString(), end: new Date(end).toISOString() });
  $('now-playing').textContent = `${state.stream} — from ${new Date(start).toLocaleString()}`;
  setClipStart(start);
  play(`/vod/${encodeURIComponent(state.stream)}/index.m3u8?${q}`, 'vod');
}
state.playRange = playRange;

let timeline = { start: 0, end: 0, recordings: [] };

async function drawTimeline() {
  if (!state.stream) return;
  const end = Date.now();
  const start = end - Number($('span').value) * 1000;
  const q = new URLSearchParams({ stream: state.stream, start: new Date(start).toISOString(), end: new Date(end).toISOString() });
  let recordings = [];
  try {
    recordings = (await getJson(`/api/v1/recordings?${q}`)).recordings;
  } catch (err) {
    setStatus(`Cannot list recordings: ${err.message}`);
  }
  timeline = { start, end, recordings };
  const bar = $('timeline');
  bar.querySelectorAll('.rec').forEach((el) => el.remove());
  for (const r of recordings) {
    const a = Math.max(start, Date.parse(r.start ?? r.end));
    const b = Math.min(end, r.growing ? end : Date.parse(r.end));
    const el = document.createElement('div');
    el.className = r.growing ? 'rec growing' : 'rec';
    el.style.left = `${((a - start) / (end - start)) * 100}%`;
    el.style.width = `max(2px, ${((b - a) / (end - start)) * 100}%)`;
    el.title = `${r.key}\n${new Date(a).toLocaleString()} – ${r.growing ? 'now' : new Date(b).toLocaleString()}`;
    bar.append(el);
  }
  $('axis-start').textContent = new Date(start).toLocaleString();
  $('axis-end').textContent = 'now';
}

$('timeline').addEventListener('click', (ev) => {
  const box = $('timeline').getBoundingClientRect();
  const t = timeline.start + ((ev.clientX - box.left) / box.width) * (timeline.end - timeline.start);
  const rec = timeline.recordings.find((r) => Date.parse(r.start ?? r.end) <= t && (r.growing || Date.parse(r.end) >= t));
  const end = rec && !rec.growing ? Date.parse(rec.end) : Math.min(Date.now(), t + 3600_000);
  playRange(t, Math.max(end, t + 1000));
});

function setClipStart(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  $('clip-start').value = d.toISOString().slice(0, 19);
  updateClipLink();
}

function updateClipLink() {
  const local = $('clip-start').value;
  const link = $('clip-download');
  if (!state.stream || !local) {
    link.removeAttribute('href');
    return;
  }
  const q = new URLSearchParams({
    stream: state.stream,
    start: new Date(local).toISOString(),
    duration: String(Number($('clip-duration').value) || 60),
    format: 'mp4',
  });
  link.href = `/api/v1/clip?${q}`;
}

$('clip-start').addEventListener('change', updateClipLink);
$('clip-duration').addEventListener('input', updateClipLink);
$('span').addEventListener('change', () => void drawTimeline());
$('go-live').addEventListener('click', goLive);
video.addEventListener('ended', () => {
  state.vodEnded = true;
  if (state.mode === 'vod') setStatus('End of the range.');
});

/** The status line: the wall-clock moment on screen (EXT-X-PROGRAM-DATE-TIME) and, live, how far behind the camera that is. */
function tick() {
  $('clock').textContent = new Date().toLocaleTimeString();
  const shown = hls?.playingDate;
  if (shown && !video.paused) {
    if (state.mode === 'live') state.latencyMs = Date.now() - shown.getTime();
    const behind = state.mode === 'live' ? ` — ${(state.latencyMs / 1000).toFixed(1)} s behind the camera` : '';
    setStatus(`Showing ${shown.toLocaleString()}${behind}`);
    const bar = $('cursor');
    if (shown.getTime() >= timeline.start && shown.getTime() <= timeline.end) {
      bar.style.display = 'block';
      bar.style.left = `${((shown.getTime() - timeline.start) / (timeline.end - timeline.start)) * 100}%`;
    }
  }
}

setInterval(tick, 500);
setInterval(() => void refreshStreams(), 3000);
setInterval(() => void drawTimeline(), 30_000);
await refreshStreams();
const first = new URLSearchParams(location.search).get('stream') ?? streams.find((s) => s.publishing)?.id;
if (first) selectStream(first);
