#!/usr/bin/env python3
"""aiortc as the other side of the `codecs` conformance suite.

  aiortc_codecs.py offer   writes aiortc's offer (one audio and one video
                           track) and exits.
  aiortc_codecs.py answer  reads an offer on stdin (to EOF), writes aiortc's
                           answer.
  aiortc_codecs.py offerer writes aiortc's offer followed by a line "--",
                           reads our answer on stdin (to EOF), applies it and
                           writes one JSON line: the codecs each transceiver
                           negotiated, [{"kind","codecs":[{"pt","name","hz","params"}]}].

Nothing is sent: the peer connection is closed right after the descriptions
are applied. Exit status 1 with the reason on stderr on any error.
"""
import asyncio
import json
import sys

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack


def new_pc():
    pc = RTCPeerConnection()
    pc.addTrack(AudioStreamTrack())
    pc.addTrack(VideoStreamTrack())
    return pc


async def offer():
    pc = new_pc()
    await pc.setLocalDescription(await pc.createOffer())
    sys.stdout.write(pc.localDescription.sdp)
    await pc.close()


async def answer():
    pc = RTCPeerConnection()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sys.stdin.read(), type="offer"))
    for t in pc.getTransceivers():
        pc.addTrack(AudioStreamTrack() if t.kind == "audio" else VideoStreamTrack())
    await pc.setLocalDescription(await pc.createAnswer())
    sys.stdout.write(pc.localDescription.sdp)
    await pc.close()


async def offerer():
    pc = new_pc()
    await pc.setLocalDescription(await pc.createOffer())
    sys.stdout.write(pc.localDescription.sdp)
    sys.stdout.write("--\n")
    sys.stdout.flush()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sys.stdin.read(), type="answer"))
    result = []
    for t in pc.getTransceivers():
        # aiortc keeps the negotiated codecs of a transceiver in `_codecs`.
        codecs = [
            {"pt": c.payloadType, "name": c.mimeType.split("/", 1)[1], "hz": c.clockRate, "params": c.parameters}
            for c in t._codecs
        ]
        result.append({"kind": t.kind, "codecs": codecs})
    sys.stdout.write(json.dumps(result) + "\n")
    await pc.close()


def main():
    modes = {"offer": offer, "answer": answer, "offerer": offerer}
    if len(sys.argv) != 2 or sys.argv[1] not in modes:
        sys.stderr.write("usage: aiortc_codecs.py offer|answer|offerer\n")
        sys.exit(2)
    try:
        asyncio.run(modes[sys.argv[1]]())
    except Exception as e:  # reported to the suite, which fails the case
        sys.stderr.write(f"{type(e).__name__}: {e}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
