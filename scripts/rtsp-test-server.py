#!/usr/bin/python3
"""A real RTSP server for appendcast's tests: GStreamer's gst-rtsp-server (Debian packages
gir1.2-gst-rtsp-server-1.0, python3-gi, gstreamer1.0-{plugins-base,good,bad,ugly,libav}).

Run it with Debian's /usr/bin/python3 (the python3 on PATH may be a pyenv without gi):

    /usr/bin/python3 scripts/rtsp-test-server.py [--port 0] [--user U --password P] [--alias /P=/MOUNT]
                                                 [--max-seconds 900] [--ignore-stdin]

It binds 127.0.0.1 (port 0 = any free port, or the given one: a restarted server comes back on the
same port), prints the bound port as one line on stdout ("PORT <n>"), and serves live test patterns
(videotestsrc 320x240@25, a keyframe every 25 frames, plus a sine tone) on these mounts:

    /h264aac        H.264 + AAC (RTP MPEG4-GENERIC)
    /ntsc           H.264 at 29.97 fps (30000/1001) + AAC
    /h265pcma       H.265 + G.711 A-law (static payload type 8)
    /h264pcmu       H.264 + G.711 mu-law (static payload type 0)
    /h264           H.264, no audio
    /udponly/h264   H.264, no audio, RTP over UDP only (a SETUP asking for TCP gets 461)
    /auth/h264aac   H.264 + AAC behind RTSP digest authentication (--user/--password; only when given)
    --alias /cam=/h264aac   the media of an existing mount at another path (repeatable)

Every factory is shared: one encoding pipeline per mount, however many clients (tests pull in
parallel on 2 cores). It exits 0 on SIGTERM or SIGINT, when its stdin reaches end of file (so it
never outlives the process that started it with a pipe on stdin; --ignore-stdin turns that off),
and after --max-seconds.
"""
import argparse
import signal
import sys

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtsp', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

# format=I420: otherwise videotestsrc and Debian's encoders may settle on 4:4:4 or 10-bit.
VIDEO_SRC = ('videotestsrc is-live=true pattern=ball ! '
             'video/x-raw,format=I420,width=320,height=240,framerate=25/1')
# sliced-threads=false: x264's sliced threads put each keyframe out as two packets with the same
# DTS over RTP (measured); aud=false: no access unit delimiters in the payload.
H264 = ('x264enc tune=zerolatency speed-preset=ultrafast sliced-threads=false threads=1 aud=false '
        'key-int-max=25 bitrate=300 ! video/x-h264,profile=constrained-baseline ! h264parse ! '
        'rtph264pay name=pay0 pt=96 config-interval=-1')
H265 = ('x265enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=300 '
        'option-string="aud=0:repeat-headers=1" ! video/x-h265,profile=main ! h265parse ! '
        'rtph265pay name=pay0 pt=96 config-interval=-1')
TONE = 'audiotestsrc is-live=true wave=sine freq=1000 volume=0.3'
AAC = (TONE + ' samplesperbuffer=1024 ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1 ! '
       'avenc_aac bitrate=64000 ! aacparse ! rtpmp4gpay name=pay1 pt=97')
PCMA = (TONE + ' samplesperbuffer=160 ! audioconvert ! audioresample ! audio/x-raw,rate=8000,channels=1 ! '
        'alawenc ! rtppcmapay name=pay1')
PCMU = (TONE + ' samplesperbuffer=160 ! audioconvert ! audioresample ! audio/x-raw,rate=8000,channels=1 ! '
        'mulawenc ! rtppcmupay name=pay1')

# 29.97 fps (30000/1001), the NTSC rate many cameras use, over RTP's 90 kHz clock.
VIDEO_SRC_NTSC = VIDEO_SRC.replace('framerate=25/1', 'framerate=30000/1001')
H264_NTSC = H264.replace('key-int-max=25', 'key-int-max=30')

MOUNTS = {
    '/h264aac': (H264, AAC),
    '/ntsc': (H264_NTSC, AAC),
    '/h265pcma': (H265, PCMA),
    '/h264pcmu': (H264, PCMU),
    '/h264': (H264, None),
}


def launch(video, audio):
    parts = [(VIDEO_SRC_NTSC if video is H264_NTSC else VIDEO_SRC) + ' ! ' + video]
    if audio:
        parts.append(audio)
    return '( ' + ' '.join(parts) + ' )'


def factory(video, audio):
    f = GstRtspServer.RTSPMediaFactory()
    f.set_launch(launch(video, audio))
    f.set_shared(True)
    # A shared media that the server thinks seekable (to 0) is seeked by every PLAY with a Range
    # header (ffmpeg always sends `Range: npt=0.000-`): a flushing seek that restarts the RTP
    # timestamps, so every client already playing sees time jump back ~1 s when another one joins
    # (measured on the wire: one RTP timestamp step of -100800 instead of +3600). A camera never
    # does that. Publishing the clock makes gst-rtsp-server treat the media as not seekable.
    f.set_publish_clock_mode(GstRtspServer.RTSPPublishClockMode.CLOCK_AND_OFFSET)
    return f


def main():
    ap = argparse.ArgumentParser(description='RTSP test server (GStreamer)')
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--user', default=None)
    ap.add_argument('--password', default=None)
    ap.add_argument('--max-seconds', type=float, default=900.0)
    ap.add_argument('--ignore-stdin', action='store_true',
                    help='do not exit at end of file on stdin (for `... &` in a script, whose stdin is /dev/null)')
    ap.add_argument('--alias', action='append', default=[], metavar='/PATH=/MOUNT',
                    help='also serve MOUNT\'s media at PATH (a "camera" whose codecs a test can change)')
    args = ap.parse_args()
    if (args.user is None) != (args.password is None):
        ap.error('--user and --password go together')

    Gst.init(None)
    loop = GLib.MainLoop()
    server = GstRtspServer.RTSPServer()
    server.set_address('127.0.0.1')
    server.set_service(str(args.port))
    mounts = server.get_mount_points()

    anonymous = 'anonymous'
    if args.user is not None:
        # Digest for everyone; a request without credentials gets the default (anonymous) token,
        # which the open mounts accept and /auth/* does not (401 with a digest challenge).
        auth = GstRtspServer.RTSPAuth()
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        anon_token = GstRtspServer.RTSPToken()
        anon_token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, anonymous)
        auth.set_default_token(anon_token)
        user_token = GstRtspServer.RTSPToken()
        user_token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, 'user')
        auth.add_digest(args.user, args.password, user_token)
        server.set_auth(auth)

    def allow(f, role, construct):
        # A role without ACCESS gets 404 (the mount is hidden); ACCESS without CONSTRUCT gets 401
        # with a digest challenge, which is what makes a client send its credentials.
        perms = Gst.Structure.new_empty(role)
        perms.set_value(GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        perms.set_value(GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, construct)
        f.add_role_from_structure(perms)

    for path, (video, audio) in MOUNTS.items():
        f = factory(video, audio)
        if args.user is not None:
            allow(f, anonymous, True)
            allow(f, 'user', True)
        mounts.add_factory(path, f)
    for alias in args.alias:
        path, _, target = alias.partition('=')
        if not path.startswith('/') or target not in MOUNTS:
            ap.error('--alias wants /PATH=/MOUNT with MOUNT one of ' + ', '.join(MOUNTS))
        f = factory(*MOUNTS[target])
        if args.user is not None:
            allow(f, anonymous, True)
            allow(f, 'user', True)
        mounts.add_factory(path, f)

    # A server that refuses RTP over TCP (461 Unsupported Transport to interleaved SETUPs), as some
    # cameras do: what transport auto must fall back from.
    f = factory(H264, None)
    f.set_protocols(GstRtsp.RTSPLowerTrans.UDP)
    if args.user is not None:
        allow(f, anonymous, True)
        allow(f, 'user', True)
    mounts.add_factory('/udponly/h264', f)
    if args.user is not None:
        f = factory(H264, AAC)
        allow(f, anonymous, False)
        allow(f, 'user', True)
        mounts.add_factory('/auth/h264aac', f)

    if server.attach(None) == 0:
        print('ERROR could not bind 127.0.0.1:%d' % args.port, flush=True)
        return 2
    print('PORT %d' % server.get_bound_port(), flush=True)

    # Drop sessions of clients that vanished without TEARDOWN (killed pullers).
    def cleanup():
        server.get_session_pool().cleanup()
        return True

    GLib.timeout_add_seconds(2, cleanup)

    def quit_(*_):
        loop.quit()
        return False

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, quit_)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, quit_)
    GLib.timeout_add(int(args.max_seconds * 1000), quit_)

    def on_stdin(source, condition):
        # End of file (or error) on stdin: whoever started us is gone.
        if condition & (GLib.IO_HUP | GLib.IO_ERR):
            return quit_()
        data = sys.stdin.buffer.read1(4096) if hasattr(sys.stdin.buffer, 'read1') else b''
        if not data:
            return quit_()
        return True

    if not args.ignore_stdin:
        GLib.io_add_watch(GLib.IOChannel.unix_new(sys.stdin.fileno()), GLib.PRIORITY_DEFAULT,
                          GLib.IO_IN | GLib.IO_HUP | GLib.IO_ERR, on_stdin)
    loop.run()
    return 0


if __name__ == '__main__':
    sys.exit(main())
