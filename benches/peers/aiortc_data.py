#!/usr/bin/env python3
"""aiortc's data-channel throughput for benches/benches/data.rs.

Two RTCPeerConnections in this one process, connected over UDP on
127.0.0.1 (ICE, DTLS, SCTP), one reliable ordered data channel opened in
band by the sender. For each message size (--sizes, octets) the sender
writes --mb MiB as binary messages, each carrying its index in the first
and last four octets; the receiver checks every message (length, index, in
order). The sender keeps at most 1 MiB buffered (bufferedAmount) and
resumes on "bufferedamountlow" (threshold 256 KiB).

A first transfer of 4 MiB per size warms up (congestion window); then one
line of JSON per size on stdout:
  {"size": S, "mb": M, "seconds": wall, "cpu": process CPU seconds}
Wall time runs from the first send to the last message received; CPU is
time.process_time() over the same span (the whole process: both peers,
the event loop, and the kernel's UDP work on their behalf).
Exit status 1 with the reason on stderr on any error.

aioice skips loopback addresses when it lists host addresses, so the host
address lookup is limited to 127.0.0.1: nothing leaves the machine.
"""
import argparse
import asyncio
import json
import sys
import time

import aioice.ice
from aiortc import RTCPeerConnection

MIB = 1 << 20
HIGH = 1 << 20
LOW = 256 * 1024


def template(n):
    return bytes(((k * 2654435761) & 0xFFFFFFFF) >> 24 for k in range(n))


class Receiver:
    def __init__(self):
        self.size = 0
        self.expected = 0
        self.count = 0
        self.target = 0
        self.done = None

    def start(self, size, count):
        self.size = size
        self.count = 0
        self.target = count
        self.done = asyncio.get_running_loop().create_future()

    def on_message(self, m):
        if not isinstance(m, bytes) or len(m) != self.size:
            self.fail(f"message {self.expected}: {type(m).__name__} of {len(m)} octets")
            return
        head = int.from_bytes(m[:4], "big")
        tail = int.from_bytes(m[-4:], "big")
        if head != self.expected or tail != self.expected:
            self.fail(f"message {self.expected}: got {head}/{tail}")
            return
        self.expected = (self.expected + 1) & 0xFFFFFFFF
        self.count += 1
        if self.count == self.target and not self.done.done():
            self.done.set_result(None)

    def fail(self, why):
        if self.done is not None and not self.done.done():
            self.done.set_exception(RuntimeError(why))


async def transfer(channel, receiver, low, base, size, count, first):
    """Sends count messages of size octets; returns the next index."""
    receiver.start(size, count)
    index = first
    for _ in range(count):
        if channel.bufferedAmount > HIGH:
            low.clear()
            await low.wait()
        i = index.to_bytes(4, "big")
        channel.send(i + base[4:size - 4] + i)
        index = (index + 1) & 0xFFFFFFFF
    await receiver.done
    return index


async def main(args):
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    a = RTCPeerConnection()
    b = RTCPeerConnection()
    receiver = Receiver()
    opened = asyncio.get_running_loop().create_future()

    @b.on("datachannel")
    def on_channel(ch):
        ch.on("message", receiver.on_message)

    channel = a.createDataChannel("bench")
    channel.bufferedAmountLowThreshold = LOW
    low = asyncio.Event()
    channel.on("bufferedamountlow", low.set)
    channel.on("open", lambda: opened.done() or opened.set_result(None))

    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    await asyncio.wait_for(opened, 20)

    base = template(max(args.sizes))
    index = 0
    for size in args.sizes:
        index = await transfer(channel, receiver, low, base, size, 4 * MIB // size, index)
        count = args.mb * MIB // size
        t, c = time.perf_counter(), time.process_time()
        index = await transfer(channel, receiver, low, base, size, count, index)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        sys.stdout.write(json.dumps({"size": size, "mb": args.mb, "seconds": wall, "cpu": cpu}) + "\n")
        sys.stdout.flush()
    await a.close()
    await b.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=int, default=32)
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[16384, 1024])
    try:
        asyncio.run(main(p.parse_args()))
    except Exception as e:  # noqa: BLE001
        print(f"aiortc_data.py: {e!r}", file=sys.stderr)
        sys.exit(1)
