#!/usr/bin/python3
"""webrtcbin_call: a GStreamer webrtcbin peer with the same JSON-lines
contract as `rtc-conformance peer call` (docs/conformance.md), so the
interop suite can put it on either side of a call with rtc:

    webrtcbin_call.py --role offer|answer [--audio] [--video] [--seconds N]
                      [--bundle-policy max-bundle|max-compat] [--stats]

With --role offer it prints {"type":"offer","sdp":…} once ICE gathering is
complete, then reads {"type":"answer","sdp":…} from stdin; with --role
answer it reads the offer line and prints the answer line. Host candidates
are on 127.0.0.1 only (libnice gathers on that address alone, over UDP;
no STUN or TURN server). Once connected it sends, for --seconds, Opus
(audiotestsrc ! opusenc ! rtpopuspay) and VP8 (videotestsrc, 160x120 at
30 frames/s ! vp8enc deadline=1 ! rtpvp8pay), and counts what it receives:
RTP packets as webrtcbin hands them out, a frame per depayloaded Opus
packet and per decoded VP8 frame (vp8dec). Its last stdout line is
{"result":{"connected_ms":…,"ice":…,"dtls":…,"selected_pair":…,
"audio":{"packets_sent":…,"packets_received":…,"frames_received":…},
"video":{…},"ok":…}} (an error line {"result":{"ok":false,"error":…}}
when it cannot run, naming the Debian packages when GStreamer lacks
something; --check only prints that, or GStreamer's version); with --stats it also carries "stats": webrtcbin's
get-stats for the RTP streams (inbound-rtp, outbound-rtp and the
remote-inbound/remote-outbound reports). Exit status 0 when connected and
every kind asked for flowed both ways. Logs go to stderr (GST_DEBUG).

Runs under the system python3 with python3-gi and Debian's GStreamer 1.22
packages (scripts/debian-packages.txt), not the project's .venv.
"""

import argparse
import json
import os
import re
import sys
import threading
import time

# What this peer needs, as Debian packages (scripts/debian-packages.txt).
PACKAGES = (
    "python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0 gir1.2-nice-0.1 "
    "gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-nice"
)
# The elements it uses, webrtcbin's own among them.
ELEMENTS = (
    "webrtcbin nicesrc nicesink dtlssrtpenc dtlssrtpdec srtpenc srtpdec rtpbin "
    "audiotestsrc audioconvert audioresample opusenc rtpopuspay rtpopusdepay "
    "videotestsrc videoconvert vp8enc rtpvp8pay rtpvp8depay vp8dec valve queue capsfilter fakesink"
).split()

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstSdp", "1.0")
    gi.require_version("GstWebRTC", "1.0")
    gi.require_version("Nice", "0.1")
    from gi.repository import GLib, Gst, GstSdp, GstWebRTC, Nice

    MISSING = None
    BUFFERS = Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST
except (ImportError, ValueError) as e:
    MISSING = str(e)

LOOPBACK = "127.0.0.1"
CONNECT_LIMIT = 10.0
GATHER_LIMIT = 5.0


def log(*what):
    print("webrtcbin_call:", *what, file=sys.stderr, flush=True)


def say(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def fail(why):
    log(why)
    say({"result": {"ok": False, "error": why}})
    sys.stdout.flush()
    os._exit(1)


def loopback_only(sdp):
    """Drops every candidate line not on 127.0.0.1 (libnice gathers none;
    this keeps it so whatever its version does)."""
    out = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            if len(parts) < 8 or parts[4] != LOOPBACK or parts[2].lower() != "udp":
                continue
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def offered_payload_types(sdp):
    """The first payload type the offer maps to each codec we send."""
    found = {}
    for m in re.finditer(r"^a=rtpmap:(\d+) ([A-Za-z0-9-]+)/", sdp, re.M):
        found.setdefault(m.group(2).upper(), int(m.group(1)))
    return found


class Call:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.lock = threading.Lock()
        self.counts = {k: {"packets_sent": 0, "packets_received": 0, "frames_received": 0} for k in ("audio", "video")}
        self.asked = None
        self.connected_at = None
        self.ice_connected = False
        self.failed = False
        self.valves = []
        self.sending = False
        self.pipe = None
        self.webrtc = None
        self.ice = None

    # -- pipeline ---------------------------------------------------------

    def build(self, pts):
        """The pipeline: webrtcbin and one sending branch per kind, each
        held shut by a valve until the call connects."""
        pipe = Gst.Pipeline.new("call")
        webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
        if webrtc is None:
            fail("no webrtcbin: install gstreamer1.0-plugins-bad and gstreamer1.0-nice")
        policy = {
            "max-bundle": GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE,
            "max-compat": GstWebRTC.WebRTCBundlePolicy.MAX_COMPAT,
            "none": GstWebRTC.WebRTCBundlePolicy.NONE,
        }[self.args.bundle_policy]
        webrtc.set_property("bundle-policy", policy)
        # Host candidates on 127.0.0.1 only, UDP only: libnice gathers on
        # the addresses it is given, and on every interface when none is;
        # no UPnP (Debian's libnice has it, and would search for a gateway
        # by multicast on every interface). The wrapper must live as long
        # as webrtcbin: webrtcbin 1.22 leaves its ICE object floating,
        # Python takes that reference, and the object would be freed with
        # the wrapper.
        self.ice = ice = webrtc.get_property("ice-agent")
        ice.set_property("ice-tcp", False)
        agent = ice.get_property("agent")
        agent.set_property("upnp", False)
        agent.set_property("ice-tcp", False)
        address = Nice.Address.new()
        address.set_from_string(LOOPBACK)
        agent.add_local_address(address)
        pipe.add(webrtc)
        self.pipe, self.webrtc = pipe, webrtc
        if self.args.audio:
            self.branch(
                "audio",
                "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! "
                "audio/x-raw,rate=48000,channels=2 ! valve name=audio_valve drop=true drop-mode=forward-sticky-events ! "
                "opusenc ! rtpopuspay name=audio_pay pt={pt} ! "
                "capsfilter caps=application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,encoding-params=(string)2,payload={pt}".format(
                    pt=pts.get("OPUS", 111)
                ),
            )
        if self.args.video:
            self.branch(
                "video",
                "videotestsrc is-live=true pattern=ball ! video/x-raw,width=160,height=120,framerate=30/1 ! "
                "videoconvert ! valve name=video_valve drop=true drop-mode=forward-sticky-events ! "
                "vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay name=video_pay pt={pt} ! "
                "capsfilter caps=application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,payload={pt}".format(
                    pt=pts.get("VP8", 96)
                ),
            )
        webrtc.connect("pad-added", self.on_pad_added)
        webrtc.connect("notify::connection-state", self.on_connection_state)
        webrtc.connect("notify::ice-connection-state", self.on_ice_state)
        bus = pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_error)
        if pipe.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            fail("the pipeline did not start")

    def branch(self, kind, description):
        bin_ = Gst.parse_bin_from_description(description, True)
        self.pipe.add(bin_)
        bin_.link(self.webrtc)
        self.valves.append(bin_.get_by_name(kind + "_valve"))
        pay = bin_.get_by_name(kind + "_pay")
        pay.get_static_pad("src").add_probe(BUFFERS, self.count, kind, "packets_sent")

    def count(self, _pad, info, kind, what):
        """A pad probe: counts buffers (RTP packets or frames), one by one
        or in lists (rtpvp8pay pushes a frame's packets as one list)."""
        n = 1
        if info.type & Gst.PadProbeType.BUFFER_LIST:
            n = info.get_buffer_list().length()
        with self.lock:
            self.counts[kind][what] += n
        return Gst.PadProbeReturn.OK

    def on_pad_added(self, _webrtc, pad):
        """A stream from the peer: count its RTP packets, then depayload
        (Opus) or decode (VP8) and count the frames."""
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps() or pad.query_caps(None)
        s = caps.get_structure(0)
        media = s.get_string("media")
        name = (s.get_string("encoding-name") or "").upper()
        log("remote stream", media, name)
        if media == "audio" and name == "OPUS":
            kind, tail = "audio", "rtpopusdepay name=out"
        elif media == "video" and name == "VP8":
            kind, tail = "video", "rtpvp8depay ! vp8dec name=out"
        else:
            sink = Gst.ElementFactory.make("fakesink")
            self.pipe.add(sink)
            sink.sync_state_with_parent()
            pad.link(sink.get_static_pad("sink"))
            return
        pad.add_probe(BUFFERS, self.count, kind, "packets_received")
        bin_ = Gst.parse_bin_from_description("queue ! " + tail + " ! fakesink async=false sync=false", True)
        self.pipe.add(bin_)
        bin_.get_by_name("out").get_static_pad("src").add_probe(BUFFERS, self.count, kind, "frames_received")
        bin_.sync_state_with_parent()
        pad.link(bin_.get_static_pad("sink"))

    def on_error(self, _bus, message):
        err, debug = message.parse_error()
        log("error:", err.message, debug or "")
        self.failed = True
        self.loop.quit()

    # -- states ---------------------------------------------------------------

    def on_ice_state(self, webrtc, _pspec):
        state = webrtc.get_property("ice-connection-state")
        log("ICE", state.value_nick)
        if state in (GstWebRTC.WebRTCICEConnectionState.CONNECTED, GstWebRTC.WebRTCICEConnectionState.COMPLETED):
            self.ice_connected = True

    def on_connection_state(self, webrtc, _pspec):
        state = webrtc.get_property("connection-state")
        log("connection", state.value_nick)
        if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED and self.connected_at is None:
            self.connected_at = time.monotonic()
            GLib.idle_add(self.start_sending)
        elif state == GstWebRTC.WebRTCPeerConnectionState.FAILED:
            self.failed = True
            GLib.idle_add(self.loop.quit)

    def start_sending(self):
        log("connected")
        for v in self.valves:
            v.set_property("drop", False)
        self.sending = True
        GLib.timeout_add(int(self.args.seconds * 1000), self.stop_sending)
        return False

    def stop_sending(self):
        for v in self.valves:
            v.set_property("drop", True)
        # Half a second for what is in flight, as the other peers wait.
        GLib.timeout_add(500, self.loop.quit)
        return False

    def connect_deadline(self):
        if self.connected_at is None:
            log("not connected within %d s" % CONNECT_LIMIT)
            self.loop.quit()
        return False

    # -- signaling ----------------------------------------------------------

    def wait(self, promise):
        """The reply of a webrtcbin promise, run to completion on this
        thread (the main loop is not running during signaling)."""
        promise.wait()
        return promise.get_reply()

    def set_description(self, which, sdp_type, text):
        ok, msg = GstSdp.SDPMessage.new_from_text(text)
        if ok != GstSdp.SDPResult.OK:
            fail("the %s is not SDP" % sdp_type.value_nick)
        desc = GstWebRTC.WebRTCSessionDescription.new(sdp_type, msg)
        promise = Gst.Promise.new()
        self.webrtc.emit(which, desc, promise)
        reply = self.wait(promise)
        if reply is not None and reply.has_field("error"):
            fail("%s (%s): %s" % (which, sdp_type.value_nick, reply.get_value("error").message))

    def create(self, what):
        promise = Gst.Promise.new()
        self.webrtc.emit(what, None, promise)
        reply = self.wait(promise)
        if reply is None or not reply.has_field(what.split("-")[1]):
            error = reply.get_value("error").message if reply is not None and reply.has_field("error") else "no reply"
            fail("%s: %s" % (what, error))
        # As text while the promise (which owns the reply) lives.
        return reply.get_value(what.split("-")[1]).sdp.as_text()

    def gathered(self):
        """Runs the main context until ICE gathering completes."""
        ctx = GLib.MainContext.default()
        until = time.monotonic() + GATHER_LIMIT
        while self.webrtc.get_property("ice-gathering-state") != GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            if time.monotonic() > until:
                fail("ICE gathering not complete within %d s" % GATHER_LIMIT)
            ctx.iteration(False)
            time.sleep(0.005)
        return loopback_only(self.webrtc.get_property("local-description").sdp.as_text())

    def publish(self, what, sdp_type):
        self.set_description("set-local-description", sdp_type, self.create(what))
        say({"type": sdp_type.value_nick, "sdp": self.gathered()})

    def run(self):
        if self.args.role == "offer":
            self.build({})
            self.publish("create-offer", GstWebRTC.WebRTCSDPType.OFFER)
            answer = read_line("answer")
            self.asked = time.monotonic()
            self.set_description("set-remote-description", GstWebRTC.WebRTCSDPType.ANSWER, answer)
        else:
            offer = read_line("offer")
            # Send with the offer's payload type numbers.
            self.build(offered_payload_types(offer))
            self.set_description("set-remote-description", GstWebRTC.WebRTCSDPType.OFFER, offer)
            self.publish("create-answer", GstWebRTC.WebRTCSDPType.ANSWER)
            self.asked = time.monotonic()
        if self.connected_at is None:
            GLib.timeout_add(int(CONNECT_LIMIT * 1000), self.connect_deadline)
        elif not self.sending:
            GLib.idle_add(self.start_sending)
        self.loop.run()
        return self.result()

    # -- the result -----------------------------------------------------------

    def stats(self):
        promise = Gst.Promise.new()
        self.webrtc.emit("get-stats", None, promise)
        reply = self.wait(promise)
        out = {}
        if reply is None:
            return out

        def plain(v):
            if isinstance(v, Gst.Structure):
                d = {}
                v.foreach(lambda f, x: d.__setitem__(GLib.quark_to_string(f), plain(x)) or True)
                return d
            if isinstance(v, (bool, int, float, str)) or v is None:
                return v
            return str(v)

        def each(field, value):
            if isinstance(value, Gst.Structure):
                out[GLib.quark_to_string(field)] = dict(plain(value), kind=value.get_name())
            return True

        reply.foreach(each)
        return out

    def result(self):
        stats = self.stats() if self.connected_at is not None else {}
        pair = {}
        for s in stats.values():
            if s.get("kind") == "candidate-pair":
                local = stats.get(s.get("local-candidate-id"), {})
                remote = stats.get(s.get("remote-candidate-id"), {})
                pair = {"local": local.get("candidate-type"), "remote": remote.get("candidate-type")}
        connected = self.connected_at is not None
        result = {
            "connected_ms": round((self.connected_at - self.asked) * 1000, 3) if connected else None,
            "ice": "connected" if self.ice_connected else "failed",
            # webrtcbin is connected when ICE and DTLS are.
            "dtls": "connected" if connected else "failed",
            "selected_pair": pair,
        }
        ok = connected and not self.failed
        with self.lock:
            for kind in ("audio", "video"):
                if getattr(self.args, kind):
                    c = dict(self.counts[kind])
                    result[kind] = c
                    ok = ok and c["packets_sent"] > 0 and c["packets_received"] > 0 and c["frames_received"] > 0
        if self.args.stats:
            wanted = ("inbound-rtp", "outbound-rtp", "remote-inbound-rtp", "remote-outbound-rtp")
            result["stats"] = {k: v for k, v in stats.items() if v.get("kind") in wanted}
        result["ok"] = ok
        return result


def missing():
    """What of GStreamer is missing, naming the packages, or None."""
    if MISSING is not None:
        return "GStreamer's Python bindings are missing (%s): install the Debian packages %s" % (MISSING, PACKAGES)
    Gst.init(None)
    absent = [e for e in ELEMENTS if Gst.ElementFactory.find(e) is None]
    if absent:
        return "GStreamer elements missing (%s): install the Debian packages %s" % (" ".join(absent), PACKAGES)
    return None


def read_line(want):
    line = sys.stdin.readline()
    if not line:
        fail("stdin closed before the %s line" % want)
    try:
        value = json.loads(line)
    except ValueError as e:
        fail("not a JSON line: %s: %s" % (e, line.strip()))
    if not isinstance(value, dict) or not value.get("sdp"):
        fail('the %s line has no "sdp"' % want)
    return value["sdp"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="only check that GStreamer has what the peer needs")
    p.add_argument("--role", choices=("offer", "answer"))
    p.add_argument("--audio", action="store_true", help="send and expect Opus audio")
    p.add_argument("--video", action="store_true", help="send and expect VP8 video")
    p.add_argument("--seconds", type=float, default=5.0, help="how long media flows once connected")
    p.add_argument("--bundle-policy", choices=("max-bundle", "max-compat", "none"), default="max-bundle")
    p.add_argument("--stats", action="store_true", help="add webrtcbin's RTP statistics to the result")
    args = p.parse_args()
    why = missing()
    if args.check:
        print(why or Gst.version_string())
        sys.exit(1 if why else 0)
    if why:
        fail(why)
    if args.role is None:
        fail("--role offer|answer is required")
    try:
        result = Call(args).run()
    except Exception as e:  # a result line whatever went wrong
        fail("%s: %s" % (type(e).__name__, e))
    say({"result": result})
    # Skip interpreter teardown: finalizing webrtcbin's ICE object from
    # Python prints GLib criticals.
    os._exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
