#!/usr/bin/env python3
"""aiortc as the far end of the `data` conformance suite: data channels only
(no media), over ICE, DTLS and SCTP.

Line protocol on stdin/stdout, one JSON object per line:
  in:  {"sdp": <our offer>}
  out: {"sdp": <aiortc's answer>}                (after ICE gathering)
  out: {"event": "open", "label": L}             (a channel opened)
  out: {"event": "closed", "label": L}           (a channel's close event)
  out: {"event": "result", ...}                  (--role open: see below)
  out: {"event": "error", "reason": R}           (anything going wrong)
aiortc exits when stdin ends (or after --timeout seconds). --log FILE writes
aiortc's debug log (every SCTP chunk, timers) there; the runner passes it
when RTC_DATA_LOGS names a directory.

--role echo: aiortc creates the pre-negotiated channel `neg` (id 1000) and
echoes every message on it and on every channel we open back on the same
channel, as it came (str or bytes).

--role open: aiortc opens `echo` (reliable, ordered), `lossy` (unordered,
maxRetransmits 0) and `neg` (negotiated, id 1000), sends the plan below,
checks every echo, reports {"event": "result", "echo": {"got", "of",
"bytes", "ms"}, "lossy": {"got", "of", "bad", "dup"}, "neg": {"got", "of"},
"error": null or the first problem}, then closes `echo`.

The plan and the messages are the same as the runner's
(conformance/src/suites/data.rs) and the Chromium page's
(conformance/peers/chromium_data.html): message i of a given size is, as
bytes, i as a little-endian u32 then ((i + k) * 13) & 0xff at offset k; as
a string, "<i>:" then the letter (i + k) % 26 at offset k; both cut to the
size.

aioice skips loopback addresses when it lists host addresses, so the host
address lookup is limited to 127.0.0.1: nothing leaves the machine.
"""
import argparse
import asyncio
import json
import logging
import sys
import time

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription

ECHO_COUNT = 1000
ECHO_SIZES = [1, 64, 1000, 65536, 5, 16384, 300, 4000, 2, 8192, 1200, 100, 20000, 3, 4096, 32768]
LOSSY_COUNT = 100
NEG_COUNT = 10
NEG_ID = 1000
# Octets sent and not yet echoed, at most (the echoer's queues stay short).
WINDOW = 1 << 20
# How long the lossy stream's echoes may take after the last send.
LOSSY_WAIT = 3.0

ALPHA = "abcdefghijklmnopqrstuvwxyz" * (65536 // 26 + 2)
PATTERN = bytes((k * 13) & 0xFF for k in range(65536 + 256))


def message(i, size, binary):
    if binary:
        s = (i + 4) % 256
        return ((i & 0xFFFFFFFF).to_bytes(4, "little") + PATTERN[s : s + max(size - 4, 0)])[:size]
    prefix = f"{i}:"
    s = (i + len(prefix)) % 26
    return (prefix + ALPHA[s : s + max(size - len(prefix), 0)])[:size]


def echo_plan(i):
    return ECHO_SIZES[i % len(ECHO_SIZES)], i % 3 != 0


def lossy_plan(i):
    return 16 + i, i % 2 == 1


def neg_plan(i):
    return 100 + 1000 * i, i % 2 == 1


def index_of(m):
    """The index a lossy message carries."""
    if isinstance(m, bytes):
        return int.from_bytes(m[:4], "little") if len(m) >= 4 else None
    head = m.split(":", 1)[0]
    return int(head) if head.isdigit() else None


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def describe(m):
    kind = "bytes" if isinstance(m, bytes) else "str"
    return f"{kind} of {len(m)}"


async def exchange(ch, count, plan):
    """Sends `count` messages on a reliable ordered channel, at most WINDOW
    octets ahead of the echoes; checks every echo in order."""
    state = {"got": 0, "inflight": 0, "error": None}
    wake = asyncio.Event()

    def on_message(m):
        got = state["got"]
        if state["error"] or got >= count:
            return
        size, binary = plan(got)
        want = message(got, size, binary)
        if type(m) is not type(want) or m != want:
            state["error"] = f"{ch.label}: echo {got} is {describe(m)}, want {describe(want)} as sent"
        state["got"] = got + 1
        state["inflight"] -= size
        wake.set()

    ch.on("message", on_message)
    start = time.monotonic()
    sent = sent_bytes = 0
    while state["got"] < count and not state["error"]:
        while sent < count:
            size, binary = plan(sent)
            if state["inflight"] and state["inflight"] + size > WINDOW:
                break
            ch.send(message(sent, size, binary))
            state["inflight"] += size
            sent_bytes += size
            sent += 1
        await wake.wait()
        wake.clear()
    ch.remove_listener("message", on_message)
    ms = (time.monotonic() - start) * 1000
    return {"got": state["got"], "of": count, "bytes": sent_bytes, "ms": round(ms, 1)}, state["error"]


async def lossy_exchange(ch):
    """Sends LOSSY_COUNT messages on the lossy channel; every echo must be
    one of them, intact, and none twice."""
    seen = set()
    state = {"bad": 0, "dup": 0, "error": None}
    done = asyncio.Event()

    def on_message(m):
        i = index_of(m)
        if i is None or i >= LOSSY_COUNT or type(m) is not type(message(i, *lossy_plan(i))) \
                or m != message(i, *lossy_plan(i)):
            state["bad"] += 1
            state["error"] = state["error"] or f"lossy: an echo is not a message sent ({describe(m)})"
        elif i in seen:
            state["dup"] += 1
            state["error"] = state["error"] or f"lossy: message {i} echoed twice"
        else:
            seen.add(i)
        if len(seen) == LOSSY_COUNT:
            done.set()

    ch.on("message", on_message)
    for i in range(LOSSY_COUNT):
        ch.send(message(i, *lossy_plan(i)))
    try:
        await asyncio.wait_for(done.wait(), LOSSY_WAIT)
    except asyncio.TimeoutError:
        pass
    ch.remove_listener("message", on_message)
    if not seen and not state["error"]:
        state["error"] = f"lossy: none of {LOSSY_COUNT} messages echoed within {LOSSY_WAIT} s"
    return {"got": len(seen), "of": LOSSY_COUNT, "bad": state["bad"], "dup": state["dup"]}, state["error"]


def opened(ch):
    """Waits for a channel's open event (or returns at once when open)."""
    fut = asyncio.get_running_loop().create_future()
    if ch.readyState == "open":
        fut.set_result(None)
    else:
        ch.once("open", lambda: fut.done() or fut.set_result(None))
    return fut


def watch(ch):
    ch.on("open", lambda: say({"event": "open", "label": ch.label}))
    ch.on("close", lambda: say({"event": "closed", "label": ch.label}))


def echo_on(ch):
    watch(ch)
    ch.on("message", lambda m: ch.send(m))


async def open_role(channels):
    try:
        await run_open(channels)
    except Exception as e:  # noqa: BLE001 - report any failure to the runner
        say({"event": "error", "reason": f"{type(e).__name__}: {e}"})


async def run_open(channels):
    echo, lossy, neg = channels
    for ch in channels:
        await opened(ch)
    result = {"event": "result"}
    errors = []
    result["echo"], e = await exchange(echo, ECHO_COUNT, echo_plan)
    errors.append(e)
    result["lossy"], e = await lossy_exchange(lossy)
    errors.append(e)
    result["neg"], e = await exchange(neg, NEG_COUNT, neg_plan)
    errors.append(e)
    result["error"] = next((e for e in errors if e), None)
    say(result)
    echo.close()


async def main(args):
    if args.log:
        logging.basicConfig(filename=args.log, level=logging.DEBUG, format="%(relativeCreated)d %(name)s %(message)s")
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    pc = RTCPeerConnection()
    loop = asyncio.get_running_loop()

    @pc.on("datachannel")
    def on_datachannel(ch):
        if args.role == "echo":
            echo_on(ch)
            say({"event": "open", "label": ch.label})
        else:
            say({"event": "error", "reason": f"we opened a channel {ch.label!r} while aiortc opens"})

    @pc.on("connectionstatechange")
    async def on_state():
        if pc.connectionState == "failed":
            say({"event": "error", "reason": "aiortc's connectionState is failed"})

    line = await loop.run_in_executor(None, sys.stdin.readline)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=json.loads(line)["sdp"], type="offer"))
    if args.role == "echo":
        echo_on(pc.createDataChannel("neg", negotiated=True, id=NEG_ID))
        task = None
    else:
        channels = [
            pc.createDataChannel("echo"),
            pc.createDataChannel("lossy", ordered=False, maxRetransmits=0),
            pc.createDataChannel("neg", negotiated=True, id=NEG_ID),
        ]
        for ch in channels:
            watch(ch)
    await pc.setLocalDescription(await pc.createAnswer())
    say({"sdp": pc.localDescription.sdp})
    if args.role == "open":
        task = asyncio.ensure_future(open_role(channels))
    # Until the runner closes stdin.
    ended = loop.run_in_executor(None, sys.stdin.read)
    try:
        await asyncio.wait_for(asyncio.shield(ended), args.timeout)
    except asyncio.TimeoutError:
        say({"event": "error", "reason": f"aiortc still running after {args.timeout} s"})
    if task is not None:
        task.cancel()
    await pc.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--role", choices=["open", "echo"], required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--log", help="write aiortc's debug log (SCTP chunk by chunk) to this file")
    try:
        asyncio.run(main(p.parse_args()))
    except Exception as e:  # noqa: BLE001 - report any failure to the runner
        sys.stderr.write(f"{type(e).__name__}: {e}\n")
        sys.exit(1)
