//! Renegotiation over SDP (RFC 3264 section 8, JSEP): after a call is up, a
//! new offer from either side adds streams; the connection keeps its ICE
//! pair and DTLS association (no restart), the new tracks' media arrives,
//! and the old streams go on.

mod sim;

use std::time::Duration;

use rtc_codecs::Kind;
use rtc_proto::{
    ConnHandle, ConnectionConfig, ConnectionEvent, Direction, SdpType, SocketOptions, StreamDescription,
    TrackDescription, TrackId,
};
use sim::Net;

fn vp8(i: u32) -> Vec<u8> {
    let mut f = vec![(i % 200) as u8; 3000];
    f[0] = u8::from(i != 0);
    f[1..5].copy_from_slice(&i.to_be_bytes());
    f
}

fn conn(net: &mut Net, name: &'static str, ip: [u8; 4]) -> (usize, ConnHandle) {
    let host = net.host(name, ip, SocketOptions::default());
    let conn = net.connect(host, ConnectionConfig::new(None, None), 5000 + host as u64);
    (host, conn)
}

fn send(net: &mut Net, at: (usize, ConnHandle), kinds: &[Kind]) -> Vec<TrackId> {
    let now = net.now;
    let tracks = kinds.iter().map(|k| TrackDescription::new(*k)).collect();
    net.conn_mut(at.0, at.1).send_stream(now, StreamDescription { stream_id: String::new(), tracks }).unwrap().1
}

/// `from` offers, `to` answers, `from` takes the answer; the offer and
/// the answer.
fn negotiate(net: &mut Net, from: (usize, ConnHandle), to: (usize, ConnHandle)) -> (String, String) {
    let offer = net.conn_mut(from.0, from.1).create_offer().expect("offer");
    let now = net.now;
    net.conn_mut(to.0, to.1).set_remote_sdp(now, SdpType::Offer, &offer).expect("offer taken");
    let answer = net.hosts[to.0].conn(to.1).local_sdp().expect("answer");
    net.conn_mut(from.0, from.1).set_remote_sdp(now, SdpType::Answer, &answer).expect("answer taken");
    (offer, answer)
}

/// Each `m=` line's kind with its `mid`, and the `a=setup` values.
fn layout(sdp: &str) -> (Vec<String>, Vec<String>) {
    let mut sections = Vec::new();
    let mut kind = String::new();
    for l in sdp.lines() {
        if let Some(m) = l.strip_prefix("m=") {
            kind = m.split(' ').next().unwrap_or_default().to_owned();
        }
        if let Some(mid) = l.strip_prefix("a=mid:") {
            sections.push(format!("{kind}:{mid}"));
        }
    }
    let setups = sdp.lines().filter_map(|l| l.strip_prefix("a=setup:")).map(str::to_owned).collect();
    (sections, setups)
}

fn ssrc(net: &Net, at: (usize, ConnHandle), t: TrackId) -> u32 {
    net.hosts[at.0].conn(at.1).track_description(t).and_then(|d| d.ssrc).unwrap()
}

#[test]
fn a_new_offer_adds_a_stream_without_restarting_the_call() {
    let mut net = Net::new(51);
    let (a, b) = (conn(&mut net, "a", [10, 0, 0, 1]), conn(&mut net, "b", [10, 0, 0, 2]));
    let first = send(&mut net, a, &[Kind::Audio, Kind::Video]);
    send(&mut net, b, &[Kind::Audio, Kind::Video]);
    let (offer, answer) = negotiate(&mut net, a, b);
    let (sections, setups) = layout(&offer);
    assert_eq!(sections, ["audio:0", "video:1"], "one section per track");
    assert!(setups.iter().all(|s| s == "actpass"));
    assert!(layout(&answer).1.iter().all(|s| s == "active"), "the answerer is the DTLS client");
    assert!(net.run_until(Duration::from_secs(5), |n| n.connected(a.0, a.1) && n.connected(b.0, b.1)));
    let connected_events = |net: &Net| {
        [a, b].map(|x| net.hosts[x.0].conn_events(x.1).iter().filter(|e| **e == ConnectionEvent::Connected).count())
    };
    assert_eq!(connected_events(&net), [1, 1]);
    // A adds a second video stream and offers again.
    let second = send(&mut net, a, &[Kind::Video]);
    let (offer, answer) = negotiate(&mut net, a, b);
    let (sections, setups) = layout(&offer);
    assert_eq!(sections, ["audio:0", "video:1", "video:2"], "the sections kept, one added");
    assert!(setups.iter().all(|s| s == "passive"), "A's DTLS role stays: {setups:?}");
    assert!(layout(&answer).1.iter().all(|s| s == "active"));
    assert!(offer.contains("o=- 0 2 IN"), "version 2: {offer}");
    // B adds a stream and offers the other way.
    let third = send(&mut net, b, &[Kind::Video]);
    let (offer, answer) = negotiate(&mut net, b, a);
    assert_eq!(layout(&offer).0, ["audio:0", "video:1", "video:2"], "B's offer keeps the sections");
    assert!(layout(&offer).1.iter().all(|s| s == "active"), "B stays the DTLS client");
    assert!(layout(&answer).1.iter().all(|s| s == "passive"), "A answers as the server it is");
    for i in 0..10 {
        let now = net.now;
        {
            let mut c = net.conn_mut(a.0, a.1);
            c.write_frame(now, first[1], &vp8(i), Duration::from_millis(40)).unwrap();
            c.write_frame(now, second[0], &vp8(100 + i), Duration::from_millis(40)).unwrap();
        }
        net.conn_mut(b.0, b.1).write_frame(now, third[0], &vp8(200 + i), Duration::from_millis(40)).unwrap();
        net.run_for(Duration::from_millis(40));
    }
    net.run_for(Duration::from_millis(200));
    assert_eq!(net.hosts[b.0].frames_of(b.1, ssrc(&net, a, first[1])).len(), 10, "the first stream goes on");
    assert_eq!(net.hosts[b.0].frames_of(b.1, ssrc(&net, a, second[0])).len(), 10, "the added stream arrives");
    assert_eq!(net.hosts[a.0].frames_of(a.1, ssrc(&net, b, third[0])).len(), 10, "and the other way");
    assert_eq!(connected_events(&net), [1, 1], "no restart, no second Connected");
    let remote = net.hosts[b.0].conn(b.1).description(Direction::Remote).unwrap();
    let tracks: usize = remote.streams.iter().map(|s| s.tracks.len()).sum();
    assert_eq!(tracks, 3, "B knows A's three tracks from A's answer, each in its section: {remote:?}");
    // A stops its second stream: the next offer keeps its section, which
    // only receives.
    let streams = net.hosts[a.0].conn(a.1).streams(Direction::Local);
    let ssrc_of_second = ssrc(&net, a, second[0]);
    let second_stream = net.hosts[a.0].conn(a.1).stream_description(streams[1]).unwrap().stream_id;
    let now = net.now;
    net.conn_mut(a.0, a.1).stop_stream(now, streams[1]);
    let (offer, _) = negotiate(&mut net, a, b);
    assert_eq!(layout(&offer).0, ["audio:0", "video:1", "video:2"]);
    let third_section = offer.split("m=").nth(3).unwrap();
    assert!(third_section.contains("a=recvonly") && !third_section.contains("a=ssrc:"), "{third_section}");
    // The first stream goes on.
    let now = net.now;
    net.conn_mut(a.0, a.1).write_frame(now, first[1], &vp8(50), Duration::from_millis(40)).unwrap();
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.hosts[b.0].frames_of(b.1, ssrc(&net, a, first[1])).len(), 11);
    // B heard that the stream is gone: its track, then the stream.
    let gone = ssrc_of_second;
    let events = net.hosts[b.0].conn_events(b.1);
    let track_down = events.iter().position(
        |e| matches!(e, ConnectionEvent::TrackDisconnected { ssrc, direction: Direction::Remote, .. } if *ssrc == gone),
    );
    let stream_down = events.iter().position(|e| {
        matches!(e, ConnectionEvent::StreamDisconnected { stream_id, direction: Direction::Remote } if *stream_id == second_stream)
    });
    assert!(track_down.is_some() && stream_down > track_down, "{events:#?}");
    assert_eq!(net.hosts[b.0].conn(b.1).streams(Direction::Remote).len(), 1, "A's first stream only");
}
