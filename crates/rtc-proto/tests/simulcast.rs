//! Simulcast (RFC 8853 with `rid`, RFC 8851) and the MID, RtpStreamId and
//! RepairedRtpStreamId header extensions (RFC 8843 section 15, RFC 8852)
//! in simulated time (tests/sim): an rtc offerer sends three layers of one
//! video track in one SDP section without SSRCs, the rtc answerer learns
//! each layer's SSRC from its packets' MID and RID (and its RTX SSRC from
//! the RRID), and each layer is a remote track of its own with its frames,
//! NACK and RTX, PLI and statistics. Sections without SSRCs are told apart
//! by MID, and a peer that sends no MID still has its track bound by kind.

mod sim;

use std::time::Duration;

use rtc_codecs::{Kind, Options};
use rtc_proto::{
    ConnHandle, ConnectionConfig, ConnectionEvent, Direction, RtpStats, SdpType, SocketOptions, StreamDescription,
    TrackDescription, TrackId, default_options,
};
use sim::Net;

const RIDS: [&str; 3] = ["h", "m", "l"];

/// A VP8 frame `i` of layer `layer` (a key frame every 50): the layer in
/// octet 5, the number in octets 1..5.
fn vp8_frame(layer: u8, i: u32, len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|k| (k as u32 ^ i.wrapping_mul(7) ^ u32::from(layer)) as u8).collect();
    f[0] = u8::from(!i.is_multiple_of(50));
    f[1..5].copy_from_slice(&i.to_be_bytes());
    f[5] = layer;
    f
}

struct Call {
    net: Net,
    /// Sender and receiver: (host, connection).
    a: (usize, ConnHandle),
    b: (usize, ConnHandle),
    /// The sender's layer tracks, in RIDS order.
    layers: Vec<TrackId>,
    offer: String,
    answer: String,
}

/// The section of `sdp` whose `m=` line starts with `m`.
fn section<'a>(sdp: &'a str, m: &str) -> &'a str {
    let start = sdp.find(m).expect("section");
    let rest = &sdp[start..];
    rest[2..].find("\r\nm=").map_or(rest, |end| &rest[..end + 2])
}

/// `a` sends one video track in three layers (h, m, l) with `options`;
/// `b` answers with default options; SDP offer/answer, then connected.
fn simulcast_call(options: Options, loss: f64, seed: u64) -> Call {
    call_offered_by(options, loss, seed, false)
}

/// [`simulcast_call`], or with `receiver_offers` the receiver offering
/// (its video section made to receive h, m and l: `a=rid:<id> recv`,
/// `a=simulcast:recv h;m;l`) and the sender answering.
fn call_offered_by(options: Options, loss: f64, seed: u64, receiver_offers: bool) -> Call {
    call_answered(options, loss, seed, receiver_offers, str::to_owned)
}

/// [`call_offered_by`], the answer edited by `edit` on its way.
fn call_answered(options: Options, loss: f64, seed: u64, receiver_offers: bool, edit: fn(&str) -> String) -> Call {
    let mut net = Net::new(seed);
    let ha = net.host("sender", [10, 0, 0, 1], SocketOptions::default());
    let hb = net.host("receiver", [10, 0, 0, 2], SocketOptions::default());
    net.link.latency = Duration::from_millis(25);
    let a = net.connect(ha, ConnectionConfig::new(None, Some(options)), 1);
    let b = net.connect(hb, ConnectionConfig::new(None, None), 2);
    let now = net.now;
    let tracks = RIDS
        .iter()
        .map(|r| TrackDescription {
            track_id: format!("cam-{r}"),
            rid: Some((*r).into()),
            ..TrackDescription::new(Kind::Video)
        })
        .collect();
    let (_, layers) =
        net.conn_mut(ha, a).send_stream(now, StreamDescription { stream_id: "me".into(), tracks }).expect("layers");
    let (offerer, answerer) = if receiver_offers { ((hb, b), (ha, a)) } else { ((ha, a), (hb, b)) };
    let mut offer = net.conn_mut(offerer.0, offerer.1).create_offer().expect("offer");
    if receiver_offers {
        let video = offer.find("m=video").expect("a video section");
        let at = video + offer[video..].find("a=recvonly\r\n").expect("receiving") + "a=recvonly\r\n".len();
        offer.insert_str(at, "a=rid:h recv\r\na=rid:m recv\r\na=rid:l recv\r\na=simulcast:recv h;m;l\r\n");
    }
    net.conn_mut(answerer.0, answerer.1).set_remote_sdp(now, SdpType::Offer, &offer).expect("offer taken");
    let answer = edit(&net.hosts[answerer.0].conn(answerer.1).local_sdp().expect("answer"));
    net.conn_mut(offerer.0, offerer.1).set_remote_sdp(now, SdpType::Answer, &answer).expect("answer taken");
    assert!(net.run_until(Duration::from_secs(10), |n| n.connected(ha, a) && n.connected(hb, b)), "connected");
    net.link.loss = loss;
    Call { net, a: (ha, a), b: (hb, b), layers, offer, answer }
}

impl Call {
    /// `frames` frames on every layer, 25 a second, of 5000, 2500 and 1200
    /// octets; then two clean seconds.
    fn send(&mut self, frames: u32) {
        for i in 0..frames {
            let now = self.net.now;
            for (n, t) in self.layers.clone().into_iter().enumerate() {
                let len = [5000, 2500, 1200][n];
                let mut c = self.net.conn_mut(self.a.0, self.a.1);
                c.write_frame(now, t, &vp8_frame(n as u8, i, len), Duration::from_millis(40)).expect("frame");
            }
            self.net.run_for(Duration::from_millis(40));
        }
        self.net.link.loss = 0.0;
        self.net.run_for(Duration::from_secs(2));
    }

    /// The sender's SSRC of layer `n`.
    fn ssrc(&self, n: usize) -> u32 {
        self.net.hosts[self.a.0].conn(self.a.1).track_description(self.layers[n]).and_then(|d| d.ssrc).expect("ssrc")
    }

    /// The frames the receiver got on layer `n`'s SSRC.
    fn received(&self, n: usize) -> Vec<Vec<u8>> {
        self.net.hosts[self.b.0].frames_of(self.b.1, self.ssrc(n)).into_iter().map(<[u8]>::to_vec).collect()
    }

    /// The statistics of the track with `ssrc` in `direction` on `(host, conn)`.
    fn stats(&self, side: (usize, ConnHandle), direction: Direction, ssrc: u32) -> (String, RtpStats) {
        let r = self.net.hosts[side.0]
            .conn(side.1)
            .stats()
            .into_iter()
            .find(|r| r.direction == direction && r.ssrc == ssrc)
            .expect("report");
        (r.track_id, r.stats)
    }
}

/// The offer carries the layers by rid, without SSRCs; the answer accepts
/// them; every layer's frames arrive whole, each on a remote track of its
/// own named `<track>-<rid>` in the sender's stream, with TrackConnected
/// for each; the MID and RID go on every packet.
#[test]
fn three_layers_are_three_remote_tracks() {
    let mut call = simulcast_call(default_options(), 0.0, 61);
    let video = section(&call.offer, "m=video");
    for line in ["a=rid:h send", "a=rid:m send", "a=rid:l send", "a=simulcast:send h;m;l", "a=msid:me cam-h"] {
        assert!(video.contains(&format!("{line}\r\n")), "{line} missing from\n{video}");
    }
    assert!(!video.contains("a=ssrc"), "no SSRCs:\n{video}");
    assert_eq!(call.offer.matches("m=video").count(), 1, "one section for the three layers");
    let answered = section(&call.answer, "m=video");
    for line in ["a=rid:h recv", "a=rid:m recv", "a=rid:l recv", "a=simulcast:recv h;m;l", "a=recvonly"] {
        assert!(answered.contains(&format!("{line}\r\n")), "{line} missing from\n{answered}");
    }
    call.send(50);
    for (n, rid) in RIDS.iter().enumerate() {
        let frames = call.received(n);
        assert_eq!(frames.len(), 50, "layer {rid}");
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(*f, vp8_frame(n as u8, i as u32, [5000, 2500, 1200][n]), "layer {rid} frame {i}");
        }
        let (track, stats) = call.stats(call.b, Direction::Remote, call.ssrc(n));
        assert!(track.ends_with(&format!("-{rid}")), "{track}");
        assert_eq!(stats.packets_lost, 0);
        let remote = call.net.hosts[call.b.0].conn(call.b.1);
        let events = call.net.hosts[call.b.0].conn_events(call.b.1);
        assert!(
            events.iter().any(|e| matches!(e, ConnectionEvent::TrackConnected { stream_id, track_id, ssrc, .. }
                if stream_id == "me" && *track_id == track && *ssrc == call.ssrc(n))),
            "TrackConnected for {track}: {events:?}"
        );
        let d = remote.description(Direction::Remote).unwrap();
        let t = d.streams.iter().flat_map(|s| &s.tracks).find(|t| t.track_id == track).unwrap();
        assert_eq!(t.rid.as_deref(), Some(*rid));
    }
    // One remote stream, three tracks; nothing unsignaled.
    let remote = call.net.hosts[call.b.0].conn(call.b.1);
    assert_eq!(remote.streams(Direction::Remote).len(), 1);
    assert_eq!(remote.stream_tracks(remote.streams(Direction::Remote)[0]).len(), 3);
}

/// Loss: each layer is NACKed and repaired on its own RTX SSRC, which the
/// receiver learns from the RRID (three RTX streams, no `a=ssrc-group`):
/// every frame of every layer arrives; statistics per layer.
#[test]
fn each_layer_is_repaired_by_its_own_rtx() {
    let mut call = simulcast_call(default_options(), 0.05, 62);
    call.send(100);
    for (n, rid) in RIDS.iter().enumerate() {
        let frames = call.received(n);
        assert!(frames.len() >= 99, "layer {rid}: {} of 100 frames", frames.len());
        let (_, recv) = call.stats(call.b, Direction::Remote, call.ssrc(n));
        let (_, sent) = call.stats(call.a, Direction::Local, call.ssrc(n));
        assert!(recv.nack_count > 0, "layer {rid}: {recv:?}");
        assert!(recv.retransmitted_packets_received.unwrap_or(0) > 0, "layer {rid} RTX taken: {recv:?}");
        assert!(sent.retransmitted_packets_sent.unwrap_or(0) > 0, "layer {rid}: {sent:?}");
    }
}

/// Without NACK (PLI only), a lost frame makes the receiver ask for a key
/// frame of that layer: a PLI to each layer's SSRC, and the sender's
/// application hears of a request for each layer's track.
#[test]
fn a_lost_frame_asks_that_layer_for_a_key_frame() {
    let mut options = default_options();
    for c in &mut options.codecs {
        c.rtcp_feedback.retain(|f| !(f.kind == "nack" && f.parameter.is_none()));
    }
    options.codecs.retain(|c| !c.is("rtx"));
    let mut call = simulcast_call(options, 0.05, 63);
    call.send(100);
    let events = call.net.hosts[call.a.0].conn_events(call.a.1);
    for (n, rid) in RIDS.iter().enumerate() {
        let (_, recv) = call.stats(call.b, Direction::Remote, call.ssrc(n));
        assert!(recv.pli_count > 0, "layer {rid}: {recv:?}");
        let ssrc = call.ssrc(n);
        assert!(
            events.iter().any(|e| matches!(e, ConnectionEvent::KeyFrameRequest { ssrc: s, .. } if *s == ssrc)),
            "a key frame request for layer {rid}"
        );
        assert!(call.received(n).len() >= 70, "layer {rid}: {} frames", call.received(n).len());
    }
}

/// Two video sections without SSRCs: the packets' MID tells them apart
/// (RFC 8843 section 9.2) even when the second section's track sends
/// first; by kind alone the first section's track would take it.
#[test]
fn sections_without_ssrcs_are_told_apart_by_mid() {
    let mut net = Net::new(64);
    let ha = net.host("sender", [10, 0, 0, 1], SocketOptions::default());
    let hb = net.host("receiver", [10, 0, 0, 2], SocketOptions::default());
    let a = net.connect(ha, ConnectionConfig::new(None, None), 1);
    let b = net.connect(hb, ConnectionConfig::new(None, None), 2);
    let now = net.now;
    let tracks = ["one", "two"]
        .iter()
        .map(|t| TrackDescription { track_id: (*t).into(), ..TrackDescription::new(Kind::Video) })
        .collect();
    let (_, sent) =
        net.conn_mut(ha, a).send_stream(now, StreamDescription { stream_id: "s".into(), tracks }).expect("tracks");
    let offer = net.conn_mut(ha, a).create_offer().expect("offer");
    let offer: String = offer.split_inclusive("\r\n").filter(|l| !l.starts_with("a=ssrc")).collect::<Vec<_>>().concat();
    assert_eq!(offer.matches("m=video").count(), 2, "{offer}");
    net.conn_mut(hb, b).set_remote_sdp(now, SdpType::Offer, &offer).expect("offer taken");
    let answer = net.hosts[hb].conn(b).local_sdp().expect("answer");
    net.conn_mut(ha, a).set_remote_sdp(now, SdpType::Answer, &answer).expect("answer taken");
    assert!(net.run_until(Duration::from_secs(10), |n| n.connected(ha, a) && n.connected(hb, b)));
    // The second track first.
    for (t, n) in [(sent[1], 1u8), (sent[0], 0)] {
        for i in 0..5 {
            let now = net.now;
            net.conn_mut(ha, a).write_frame(now, t, &vp8_frame(n, i, 1000), Duration::from_millis(40)).unwrap();
            net.run_for(Duration::from_millis(40));
        }
    }
    net.run_for(Duration::from_millis(500));
    let remote = net.hosts[hb].conn(b).description(Direction::Remote).unwrap();
    for (t, name) in sent.iter().zip(["one", "two"]) {
        let ssrc = net.hosts[ha].conn(a).track_description(*t).and_then(|d| d.ssrc).unwrap();
        let events = net.hosts[hb].conn_events(b);
        assert!(
            events.iter().any(|e| matches!(e, ConnectionEvent::TrackConnected { track_id, ssrc: s, .. }
                if track_id == name && *s == ssrc)),
            "{name} takes {ssrc}: {events:?} {remote:?}"
        );
        assert_eq!(net.hosts[hb].frames_of(b, ssrc).len(), 5);
    }
}

/// A peer that negotiates no MID (nor RID): its track announced without an
/// SSRC still takes the first one of its kind.
#[test]
fn without_mid_a_track_is_bound_by_kind() {
    let mut options = default_options();
    options.header_extensions.retain(|e| !e.uri.contains("sdes:"));
    let mut net = Net::new(65);
    let ha = net.host("sender", [10, 0, 0, 1], SocketOptions::default());
    let hb = net.host("receiver", [10, 0, 0, 2], SocketOptions::default());
    let a = net.connect(ha, ConnectionConfig::new(None, Some(options)), 1);
    let b = net.connect(hb, ConnectionConfig::new(None, None), 2);
    let now = net.now;
    let tracks = vec![TrackDescription { track_id: "v".into(), ..TrackDescription::new(Kind::Video) }];
    let (_, sent) =
        net.conn_mut(ha, a).send_stream(now, StreamDescription { stream_id: "s".into(), tracks }).expect("track");
    let offer = net.conn_mut(ha, a).create_offer().expect("offer");
    assert!(!offer.contains("sdes:mid"), "{offer}");
    let offer: String = offer.split_inclusive("\r\n").filter(|l| !l.starts_with("a=ssrc")).collect::<Vec<_>>().concat();
    net.conn_mut(hb, b).set_remote_sdp(now, SdpType::Offer, &offer).expect("offer taken");
    let answer = net.hosts[hb].conn(b).local_sdp().expect("answer");
    assert!(!answer.contains("sdes:mid"), "{answer}");
    net.conn_mut(ha, a).set_remote_sdp(now, SdpType::Answer, &answer).expect("answer taken");
    assert!(net.run_until(Duration::from_secs(10), |n| n.connected(ha, a) && n.connected(hb, b)));
    for i in 0..5 {
        let now = net.now;
        net.conn_mut(ha, a).write_frame(now, sent[0], &vp8_frame(0, i, 1000), Duration::from_millis(40)).unwrap();
        net.run_for(Duration::from_millis(40));
    }
    net.run_for(Duration::from_millis(500));
    let ssrc = net.hosts[ha].conn(a).track_description(sent[0]).and_then(|d| d.ssrc).unwrap();
    assert_eq!(net.hosts[hb].frames_of(b, ssrc).len(), 5);
    let events = net.hosts[hb].conn_events(b);
    assert!(events.iter().any(|e| matches!(e, ConnectionEvent::TrackConnected { track_id, .. } if track_id == "v")));
}

/// Renegotiation: the sender stops its layers and offers again (its
/// section now receives only); the layers' tracks leave the receiver, with
/// TrackDisconnected for each and StreamDisconnected. A layer with an
/// invalid or repeated rid is refused.
#[test]
fn layers_leave_with_their_section_and_bad_rids_are_refused() {
    let mut call = simulcast_call(default_options(), 0.0, 66);
    call.send(5);
    let (ha, a) = call.a;
    let (hb, b) = call.b;
    let now = call.net.now;
    let stream = call.net.hosts[ha].conn(a).streams(Direction::Local)[0];
    call.net.conn_mut(ha, a).stop_stream(now, stream);
    let offer = call.net.conn_mut(ha, a).create_offer().expect("offer");
    assert!(!offer.contains("a=rid"), "{offer}");
    call.net.conn_mut(hb, b).set_remote_sdp(now, SdpType::Offer, &offer).expect("offer taken");
    let answer = call.net.hosts[hb].conn(b).local_sdp().expect("answer");
    assert!(!answer.contains("a=simulcast"), "{answer}");
    call.net.conn_mut(ha, a).set_remote_sdp(now, SdpType::Answer, &answer).expect("answer taken");
    call.net.run_for(Duration::from_millis(10));
    let remote = call.net.hosts[hb].conn(b);
    assert!(remote.streams(Direction::Remote).is_empty(), "the layers are gone");
    let events = call.net.hosts[hb].conn_events(b);
    let downs = events.iter().filter(|e| matches!(e, ConnectionEvent::TrackDisconnected { .. })).count();
    assert_eq!(downs, 3, "{events:?}");
    assert!(events.iter().any(|e| matches!(e, ConnectionEvent::StreamDisconnected { .. })));

    let now = call.net.now;
    let layer = |rid: &str| TrackDescription { rid: Some(rid.into()), ..TrackDescription::new(Kind::Video) };
    for bad in [vec![layer("")], vec![layer("h!")], vec![layer("seventeen-octets!")], vec![layer("h"), layer("h")]] {
        let r = call.net.conn_mut(ha, a).send_stream(now, StreamDescription { stream_id: "x".into(), tracks: bad });
        assert!(matches!(r, Err(rtc_proto::Error::InvalidDescription(_))), "{r:?}");
    }
    let (s, _) = call
        .net
        .conn_mut(ha, a)
        .send_stream(now, StreamDescription { stream_id: "y".into(), tracks: vec![layer("h")] })
        .expect("one layer");
    let r = call.net.conn_mut(ha, a).add_track(now, s, layer("h"));
    assert!(matches!(r, Err(rtc_proto::Error::InvalidDescription(_))), "{r:?}");
    call.net.conn_mut(ha, a).add_track(now, s, layer("m")).expect("another layer");
}

/// RFC 8853 section 5.3 the other way: the receiver offers to receive h, m
/// and l (`a=simulcast:recv`), the sender answers sending its layers
/// (`a=rid:<id> send`, `a=simulcast:send h;m;l`, no SSRCs), and the
/// receiver, reading that answer, takes each layer on a track of its own.
#[test]
fn an_offer_to_receive_layers_is_answered_with_them() {
    let mut call = call_offered_by(default_options(), 0.0, 67, true);
    let video = section(&call.answer, "m=video");
    for line in ["a=sendonly", "a=rid:h send", "a=rid:m send", "a=rid:l send", "a=simulcast:send h;m;l"] {
        assert!(video.contains(&format!("{line}\r\n")), "{line} missing from\n{video}");
    }
    assert!(!video.contains("a=ssrc"), "no SSRCs:\n{video}");
    call.send(20);
    for (n, rid) in RIDS.iter().enumerate() {
        assert_eq!(call.received(n).len(), 20, "layer {rid}");
        let (track, _) = call.stats(call.b, Direction::Remote, call.ssrc(n));
        assert!(track.ends_with(&format!("-{rid}")), "{track}");
    }
}

/// RFC 8853 section 5.3: the answer takes h, pauses m (`~m`) and leaves l
/// out: only h is sent, writes to m and l are refused and say why, and
/// `layer_taken` tells the application which layers to encode. An answer
/// without `a=simulcast` takes the first layer alone.
#[test]
fn layers_the_answer_pauses_or_leaves_out_are_not_sent() {
    fn pause_m_drop_l(answer: &str) -> String {
        answer.replace("a=rid:l recv\r\n", "").replace("a=simulcast:recv h;m;l", "a=simulcast:recv h;~m")
    }
    fn no_simulcast(answer: &str) -> String {
        answer.split_inclusive("\r\n").filter(|l| !l.starts_with("a=rid:") && !l.starts_with("a=simulcast")).collect()
    }
    let sent = [true, false, false];
    for (edit, paused) in [(pause_m_drop_l as fn(&str) -> String, true), (no_simulcast, false)] {
        let mut call = call_answered(default_options(), 0.0, 71, false, edit);
        let now = call.net.now;
        let mut refused = Vec::new();
        for (n, &t) in call.layers.clone().iter().enumerate() {
            let taken = call.net.hosts[call.a.0].conn(call.a.1).layer_taken(t);
            assert_eq!(taken, sent[n], "layer {}", RIDS[n]);
            let mut c = call.net.conn_mut(call.a.0, call.a.1);
            match c.write_frame(now, t, &vp8_frame(n as u8, 0, 1000), Duration::from_millis(40)) {
                Ok(_) => assert!(sent[n]),
                Err(e) => refused.push(e.to_string()),
            }
        }
        assert_eq!(refused.len(), 2, "{refused:?}");
        if paused {
            assert!(refused[0].contains("paused") && refused[1].contains("does not take"), "{refused:?}");
        } else {
            assert!(refused.iter().all(|r| r.contains("no simulcast")), "{refused:?}");
        }
        call.net.run_for(Duration::from_millis(500));
        assert_eq!(call.received(0).len(), 1, "h arrives");
    }
}
