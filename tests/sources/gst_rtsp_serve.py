"""An RTSP server (GStreamer's gst-rtsp-server) serving a folder of JPEG frames as H.264.

Run by the system Python (`/usr/bin/python3`), which has PyGObject; the test
venv does not. Frames `frame0000.jpg`, `frame0001.jpg`, ... are decoded,
encoded with x264 and served in a loop at `--fps` on 127.0.0.1, as an IP
camera serves its main stream. Prints `ready` once the port is bound, and
`setup transport=<Transport header>` for every SETUP a client sends, so a
test can see which transport the client asked for. `--check` exits 0 when
every element it needs is installed (`make system-deps` runs it).

Debian packages: gstreamer1.0-rtsp, gir1.2-gst-rtsp-server-1.0,
gstreamer1.0-plugins-base, gstreamer1.0-plugins-good (jpegdec, rtph264pay),
gstreamer1.0-plugins-ugly (x264enc), python3-gi.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402 - versions must be set first


def _launch(frames_dir: str, fps: int) -> str:
    # key-int-max=fps: a keyframe every second, so a reconnecting client decodes within a second.
    return (
        f'( multifilesrc location="{frames_dir}/frame%04d.jpg" index=0 loop=true '
        f'caps="image/jpeg,framerate={fps}/1" ! jpegdec ! videoconvert ! video/x-raw,format=I420 '
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def _on_setup(_client: GstRtspServer.RTSPClient, ctx: GstRtspServer.RTSPContext) -> None:
    res, transport = ctx.request.get_header(GstRtsp.RTSPHeaderField.TRANSPORT, 0)
    print(f"setup transport={transport if res == GstRtsp.RTSPResult.OK else '-'}", flush=True)


def _on_client(_server: GstRtspServer.RTSPServer, client: GstRtspServer.RTSPClient) -> None:
    client.connect("setup-request", _on_setup)


ELEMENTS = ("multifilesrc", "jpegdec", "videoconvert", "x264enc", "rtph264pay")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 0 if every element needed is installed")
    parser.add_argument("--port", type=int)
    parser.add_argument("--mount", default="/stream")
    parser.add_argument("--frames", help="folder of frame0000.jpg, frame0001.jpg, ...")
    parser.add_argument("--fps", type=int, default=10)
    args = parser.parse_args(argv)

    Gst.init(None)
    missing = [name for name in ELEMENTS if Gst.ElementFactory.find(name) is None]
    if args.check or missing:
        if missing:
            print(f"missing GStreamer elements: {', '.join(missing)}", file=sys.stderr, flush=True)
        return 1 if missing else 0
    if args.port is None or args.frames is None:
        parser.error("--port and --frames are required")
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(_launch(args.frames, args.fps))
    # One encoder for every client, as a camera has one main stream.
    factory.set_shared(True)
    server.get_mount_points().add_factory(args.mount, factory)
    server.connect("client-connected", _on_client)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 1
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print("ready", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
