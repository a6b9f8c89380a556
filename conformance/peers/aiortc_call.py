#!/usr/bin/env python3
"""aiortc as the far end of a real call in the `api` conformance suite:
ICE, DTLS-SRTP and Opus audio both ways.

Line protocol on stdin/stdout, one JSON object per line:
  in:  {"sdp": <our offer>}
  out: {"sdp": <aiortc's answer>}            (after ICE gathering)
  out: {"event": "connected"}                (connectionState "connected")
  out: {"event": "done", "frames": N, "state": <connectionState>}
       once aiortc decoded --frames audio frames of ours, or after
       --timeout seconds.
aiortc sends its own audio track (AudioStreamTrack: Opus-encoded silence)
and, with --video, its own video track (VideoStreamTrack, VP8). Its "done"
line then also gives "remb": the REMBs rtc sent about that video, as
aiortc's sender read them ({"count": N, "last": bit/s}), and "target": the
bitrate its VP8 encoder was set to (aiortc clamps REMB to 250 kbit/s ..
1.5 Mbit/s).
Exit status 1 with the reason on stderr on any error.

aioice skips loopback addresses when it lists host addresses, so the host
address lookup is limited to 127.0.0.1: nothing leaves the machine.
"""
import argparse
import asyncio
import json
import sys

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, unpack_remb_fci


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main(args):
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    pc = RTCPeerConnection()
    pc.addTrack(AudioStreamTrack())
    remb = {"count": 0, "last": None}
    video_sender = None
    if args.video:
        video_sender = pc.addTrack(VideoStreamTrack())
        handle = video_sender._handle_rtcp_packet

        async def counting(packet):
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, ssrcs = unpack_remb_fci(packet.fci)
                    if video_sender._ssrc in ssrcs:
                        remb["count"] += 1
                        remb["last"] = bitrate
                except ValueError:
                    pass
            await handle(packet)

        video_sender._handle_rtcp_packet = counting
    received = 0
    finished = asyncio.Event()

    @pc.on("connectionstatechange")
    async def on_state():
        if pc.connectionState == "connected":
            say({"event": "connected"})
        elif pc.connectionState in ("failed", "closed"):
            finished.set()

    @pc.on("track")
    def on_track(track):
        if track.kind != "audio":
            return

        async def consume():
            nonlocal received
            while True:
                try:
                    await track.recv()
                except Exception:
                    return
                received += 1
                if received >= args.frames:
                    finished.set()

        asyncio.ensure_future(consume())

    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    offer = json.loads(line)["sdp"]
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    say({"sdp": pc.localDescription.sdp})
    try:
        await asyncio.wait_for(finished.wait(), args.timeout)
    except asyncio.TimeoutError:
        pass
    done = {"event": "done", "frames": received, "state": pc.connectionState}
    if video_sender is not None:
        encoder = getattr(video_sender, "_RTCRtpSender__encoder", None)
        done["remb"] = remb
        done["target"] = getattr(encoder, "target_bitrate", None)
    say(done)
    await pc.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=25)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--video", action="store_true")
    try:
        asyncio.run(main(p.parse_args()))
    except Exception as e:  # noqa: BLE001 - report any failure to the runner
        sys.stderr.write(f"{type(e).__name__}: {e}\n")
        sys.exit(1)
