#!/usr/bin/env python3
"""aioice as an ICE peer for the `ice` conformance suite.

Same line protocol as `rtc-conformance peer ice`: writes its description as
one JSON line {"ufrag","pwd","candidates":["candidate:..."]}, reads the
remote one as one line, connects, writes {"event":"connected","ms":N} and
{"event":"activecandidate",...}, then pings or echoes --count datagrams and
writes {"event":"done"}. Exit status 1 with the reason on stderr otherwise.

aioice skips loopback addresses when it lists host addresses, so the host
address lookup is limited to the --bind addresses (127.0.0.1 and/or ::1).
"""
import argparse
import asyncio
import json
import sys
import time

import aioice
import aioice.ice


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def report_pair(conn):
    pair = conn._nominated.get(1)
    if pair is not None:
        say(
            {
                "event": "activecandidate",
                "local": "candidate:" + pair.local_candidate.to_sdp(),
                "remote": "candidate:" + pair.remote_candidate.to_sdp(),
            }
        )


async def main(args):
    binds = args.bind or ["127.0.0.1"]
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: list(binds)
    conn = aioice.Connection(
        ice_controlling=args.role == "controlling",
        use_ipv4=any(":" not in b for b in binds),
        use_ipv6=any(":" in b for b in binds),
    )
    await conn.gather_candidates()
    say(
        {
            "ufrag": conn.local_username,
            "pwd": conn.local_password,
            "candidates": ["candidate:" + c.to_sdp() for c in conn.local_candidates],
        }
    )
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    remote = json.loads(line)
    t0 = time.monotonic()
    conn.remote_username = remote["ufrag"]
    conn.remote_password = remote["pwd"]
    # An ICE lite peer (RFC 8445 section 2.5): aioice then nominates
    # regularly instead of on every check.
    conn.remote_is_lite = bool(remote.get("lite", False))
    for c in remote["candidates"]:
        sdp = c[len("candidate:"):] if c.startswith("candidate:") else c
        await conn.add_remote_candidate(aioice.Candidate.from_sdp(sdp))
    await conn.add_remote_candidate(None)
    await conn.connect()
    say({"event": "connected", "ms": int((time.monotonic() - t0) * 1000)})
    report_pair(conn)
    for i in range(args.count):
        if args.mode == "ping":
            msg = f"ping {i}".encode()
            await conn.send(msg)
            echo = await conn.recv()
            if echo != msg:
                raise RuntimeError(f"echo of {msg!r} was {echo!r}")
        else:
            data = await conn.recv()
            await conn.send(data)
    # The nominated pair may have changed while data flowed: report the last.
    report_pair(conn)
    say({"event": "done", "count": args.count})
    await conn.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--role", choices=["controlling", "controlled"], required=True)
    p.add_argument("--bind", action="append", default=[], help="host address (IP only)")
    p.add_argument("--mode", choices=["ping", "echo"], default="ping")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--timeout", type=float, default=20)
    a = p.parse_args()
    try:
        asyncio.run(asyncio.wait_for(main(a), a.timeout))
    except Exception as e:  # noqa: BLE001 - the harness wants the reason
        sys.stderr.write(f"aioice peer: {type(e).__name__}: {e}\n")
        sys.exit(1)
