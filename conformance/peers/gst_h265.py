#!/usr/bin/env python3
"""GStreamer as the other side of the codecs suite's H.265 case (RFC 7798),
run under the system python3 with python3-gi:

    gst_h265.py SEND_PORT RECV_PORT REFERENCE FRAMES

1. Starts a receiver on 127.0.0.1:RECV_PORT: udpsrc ! rtph265depay !
   h265parse ! avdec_h265, counting the pictures it decodes.
2. Encodes FRAMES frames of videotestsrc with x265enc (an IRAP picture
   every 15), writes the byte stream to REFERENCE and sends it with
   rtph265pay (APs for small units, FUs for long ones) to
   127.0.0.1:SEND_PORT at its real pace; prints `sent` once done.
3. When its standard input closes (the runner sent everything back),
   waits a second for the receiver to drain and prints
   `{"decoded": N}`.

`--check` only tells whether every element is installed. Nothing leaves
127.0.0.1.
"""

import json
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

ELEMENTS = ["videotestsrc", "x265enc", "h265parse", "rtph265pay", "rtph265depay", "avdec_h265", "udpsrc", "udpsink"]


def main():
    Gst.init(None)
    missing = [e for e in ELEMENTS if Gst.ElementFactory.find(e) is None]
    if missing:
        print("GStreamer elements missing: " + ", ".join(missing) + " (Debian: gstreamer1.0-plugins-good, "
              "gstreamer1.0-plugins-bad, gstreamer1.0-libav)", flush=True)
        return 2
    if sys.argv[1:] == ["--check"]:
        return 0
    send_port, recv_port, reference, frames = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])

    receiver = Gst.parse_launch(
        f"udpsrc address=127.0.0.1 port={recv_port} "
        'caps="application/x-rtp,media=video,clock-rate=90000,encoding-name=H265,payload=96" '
        "! rtph265depay ! h265parse ! avdec_h265 ! fakesink name=sink signal-handoffs=true sync=false")
    decoded = [0]

    def on_picture(*_):
        decoded[0] += 1

    receiver.get_by_name("sink").connect("handoff", on_picture)
    receiver.set_state(Gst.State.PLAYING)

    sender = Gst.parse_launch(
        f"videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 "
        "! x265enc tune=zerolatency key-int-max=15 speed-preset=ultrafast "
        "! video/x-h265,stream-format=byte-stream,alignment=au ! tee name=t "
        f"t. ! queue ! filesink location={reference} "
        "t. ! queue ! rtph265pay mtu=1200 pt=96 aggregate-mode=zero-latency "
        f"! udpsink host=127.0.0.1 port={send_port} sync=true")
    sender.set_state(Gst.State.PLAYING)
    msg = sender.get_bus().timed_pop_filtered(60 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    sender.set_state(Gst.State.NULL)
    if msg is None or msg.type != Gst.MessageType.EOS:
        print("ERROR sending: " + (str(msg.parse_error()) if msg else "no end of stream in 60 s"), flush=True)
        return 1
    print("sent", flush=True)

    sys.stdin.read()
    time.sleep(1)
    msg = receiver.get_bus().pop_filtered(Gst.MessageType.ERROR)
    receiver.set_state(Gst.State.NULL)
    if msg is not None:
        print("ERROR receiving: " + str(msg.parse_error()), flush=True)
        return 1
    print(json.dumps({"decoded": decoded[0]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
