#!/usr/bin/env bash
# Generates the small media fixtures under fixtures/ that the container tests read.
#
# Regenerate (from the repo root, with ffmpeg on PATH or FFMPEG_PATH set):
#   bash scripts/make-fixtures.sh            # (re)writes the three fixtures/*.mp4
#
# Each fragmented MP4 is produced exactly the way the gateway produces it: an encoder writes FLV
# (what a camera pushes over RTMP), then `ffmpeg -f flv -i in.flv -c copy -f mp4 -movflags
# +frag_keyframe+empty_moov+default_base_moof+skip_trailer` remuxes it. Encoding is single-threaded
# with bitexact flags so a rerun with the same ffmpeg build gives the same bytes; another ffmpeg
# build may differ slightly, which is fine: the tests derive expectations with ffprobe.
#
# Outputs (4 s each, 320x240 testsrc2 at 25 fps, 1 s GOP, libx264 ultrafast, ~80 kbit/s;
# sine 1 kHz AAC 48 kHz mono 32 kbit/s):
#   fixtures/av-gop1s.mp4          H.264 + AAC, one fragment per GOP (4 fragments)
#   fixtures/video-gop1s.mp4       H.264 only, one fragment per GOP
#   fixtures/av-frag200ms.mp4      H.264 + AAC, -frag_duration 200000 (sub-GOP fragments)
# The intermediate FLVs live in a temp dir and are not kept (tests that need an mfra trailer
# remux a committed fixture again without +skip_trailer).
set -euo pipefail

FFMPEG="${FFMPEG_PATH:-ffmpeg}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/fixtures"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"

common_in=(-hide_banner -nostdin -loglevel error -y)
video_src=(-f lavfi -i "testsrc2=size=320x240:rate=25")
audio_src=(-f lavfi -i "sine=frequency=1000:sample_rate=48000")
video_enc=(-c:v libx264 -preset ultrafast -threads 1 -g 25 -keyint_min 25 -sc_threshold 0
  -b:v 80k -maxrate 80k -bufsize 160k -pix_fmt yuv420p)
audio_enc=(-c:a aac -b:a 32k -ac 1)
bitexact=(-fflags +bitexact -flags:v +bitexact -flags:a +bitexact)
remux_flags=(-c copy -f mp4 -movflags +frag_keyframe+empty_moov+default_base_moof+skip_trailer)

# 1) Encode like a camera: FLV.
"$FFMPEG" "${common_in[@]}" "${video_src[@]}" "${audio_src[@]}" -t 4 \
  "${video_enc[@]}" "${audio_enc[@]}" "${bitexact[@]}" -f flv "$TMP/av.flv"
"$FFMPEG" "${common_in[@]}" "${video_src[@]}" -t 4 \
  "${video_enc[@]}" "${bitexact[@]}" -f flv "$TMP/video.flv"

# 2) Remux like the gateway: FLV -> fragmented MP4, stream copy.
"$FFMPEG" "${common_in[@]}" -f flv -i "$TMP/av.flv" "${remux_flags[@]}" -fflags +bitexact \
  "$OUT/av-gop1s.mp4"
"$FFMPEG" "${common_in[@]}" -f flv -i "$TMP/video.flv" "${remux_flags[@]}" -fflags +bitexact \
  "$OUT/video-gop1s.mp4"
"$FFMPEG" "${common_in[@]}" -f flv -i "$TMP/av.flv" "${remux_flags[@]}" -frag_duration 200000 \
  -fflags +bitexact "$OUT/av-frag200ms.mp4"

ls -l "$OUT"
