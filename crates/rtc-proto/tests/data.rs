//! Data streams (WebRTC data channels: SCTP over DTLS, DCEP) between
//! `Endpoint`s in simulated time (tests/sim): in-band and pre-negotiated
//! streams, strings, binary and empty messages, closing from either side,
//! the peer's message size limit, buffered-amount events, and delivery
//! under loss and reordering.

mod sim;

use std::time::Duration;

use rtc_proto::{
    ConnHandle, ConnectionConfig, DataEvent, DataState, DataStreamDescription, DataStreamId, Direction, Error, Event,
    SocketOptions,
};
use sim::{Link, Net};

#[derive(Clone, Copy)]
struct Peer {
    host: usize,
    conn: ConnHandle,
}

impl Peer {
    fn at(self) -> (usize, ConnHandle) {
        (self.host, self.conn)
    }
}

/// A peer with no media at all.
fn peer(net: &mut Net, name: &'static str, ip: [u8; 4]) -> Peer {
    let host = net.host(name, ip, SocketOptions::default());
    let seed = 2000 + net.hosts.len() as u64;
    let conn = net.connect(host, ConnectionConfig::new(None, None), seed);
    Peer { host, conn }
}

fn open(net: &mut Net, p: Peer, d: DataStreamDescription) -> DataStreamId {
    let now = net.now;
    net.conn_mut(p.host, p.conn).open_data_stream(now, d).expect("open data stream")
}

fn send(net: &mut Net, p: Peer, s: DataStreamId, m: &[u8], binary: bool) -> Result<(), Error> {
    let now = net.now;
    net.conn_mut(p.host, p.conn).send_data(now, s, m, binary)
}

/// The data events of `p`, in order.
fn data_events(net: &Net, p: Peer) -> Vec<(DataStreamId, DataEvent)> {
    net.hosts[p.host]
        .events
        .iter()
        .filter(|(_, c, _)| *c == p.conn)
        .filter_map(|(_, _, e)| match e {
            Event::Data { stream, event } => Some((*stream, *event)),
            _ => None,
        })
        .collect()
}

fn has(net: &Net, p: Peer, s: DataStreamId, e: DataEvent) -> bool {
    data_events(net, p).contains(&(s, e))
}

/// The messages `p` received on `s`: (binary, content).
fn messages(net: &Net, p: Peer, s: DataStreamId) -> Vec<(bool, Vec<u8>)> {
    net.hosts[p.host]
        .data
        .iter()
        .filter(|(_, c, m, _)| *c == p.conn && m.stream == s)
        .map(|(_, _, m, d)| (m.binary, d.clone()))
        .collect()
}

/// The stream the peer opened on `p`'s side (its Incoming event).
fn incoming(net: &Net, p: Peer) -> Vec<DataStreamId> {
    data_events(net, p).into_iter().filter(|(_, e)| *e == DataEvent::Incoming).map(|(s, _)| s).collect()
}

/// How many messages `p` received on `s`.
fn count(net: &Net, p: Peer, s: DataStreamId) -> usize {
    net.hosts[p.host].data.iter().filter(|(_, c, m, _)| *c == p.conn && m.stream == s).count()
}

fn message(i: usize, len: usize) -> Vec<u8> {
    let mut m: Vec<u8> = (0..len).map(|k| (k * 7 + i) as u8).collect();
    if len >= 4 {
        m[..4].copy_from_slice(&(i as u32).to_be_bytes());
    }
    m
}

#[test]
fn a_data_only_connection_opens_in_band_carries_every_kind_of_message_and_closes() {
    let mut net = Net::new(7);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    let chat =
        open(&mut net, a, DataStreamDescription { protocol: "chat/1".into(), ..DataStreamDescription::new("chat") });
    let local = net.hosts[a.host].conn(a.conn).description(Direction::Local).unwrap();
    assert_eq!(local.data.map(|d| (d.port, d.max_message_size)), Some((5000, 256 * 1024)));
    assert_eq!(local.data_streams[0].label, "chat");
    assert!(send(&mut net, a, chat, b"early", false).is_err(), "not open before the association");
    net.signal_dtls(a.at(), b.at());
    assert!(net.run_until(Duration::from_secs(5), |n| has(n, a, chat, DataEvent::Open)), "{:?}", data_events(&net, a));
    let theirs = incoming(&net, b);
    assert_eq!(theirs.len(), 1);
    let s = theirs[0];
    assert!(has(&net, b, s, DataEvent::Open));
    let d = net.hosts[b.host].conn(b.conn).data_stream_description(s).unwrap();
    assert_eq!((d.label.as_str(), d.protocol.as_str(), d.ordered), ("chat", "chat/1", true));
    // The DTLS client uses even ids, the server odd ones; both sides agree.
    let id = d.id.unwrap();
    assert_eq!(net.hosts[a.host].conn(a.conn).data_stream_description(chat).unwrap().id, Some(id));
    let a_client =
        net.hosts[a.host].conn(a.conn).description(Direction::Local).unwrap().sockets[0].options.setup.as_deref()
            == Some("active");
    assert_eq!(id.is_multiple_of(2), a_client);

    send(&mut net, a, chat, "héllo".as_bytes(), false).unwrap();
    send(&mut net, a, chat, &[1, 2, 3], true).unwrap();
    send(&mut net, a, chat, b"", false).unwrap();
    send(&mut net, a, chat, b"", true).unwrap();
    let big = message(9, 200_000);
    send(&mut net, a, chat, &big, true).unwrap();
    send(&mut net, b, s, b"back", false).unwrap();
    net.run_for(Duration::from_secs(1));
    let got = messages(&net, b, s);
    let want =
        vec![(false, "héllo".as_bytes().to_vec()), (true, vec![1, 2, 3]), (false, vec![]), (true, vec![]), (true, big)];
    assert_eq!(got, want);
    assert_eq!(messages(&net, a, chat), vec![(false, b"back".to_vec())]);

    // The peer takes at most 256 KiB.
    let too_big = vec![0u8; 256 * 1024 + 1];
    assert!(matches!(send(&mut net, a, chat, &too_big, true), Err(Error::TooLarge { .. })));

    // Closing from the remote side closes both.
    let now = net.now;
    net.conn_mut(b.host, b.conn).close_data_stream(now, s);
    assert!(
        net.run_until(Duration::from_secs(2), |n| has(n, a, chat, DataEvent::Closed)
            && has(n, b, s, DataEvent::Closed))
    );
    assert_eq!(net.hosts[a.host].conn(a.conn).data_stream_state(chat), Some(DataState::Closed));
    assert!(send(&mut net, a, chat, b"late", false).is_err());
    // The connection is still up: a new stream opens on it.
    let again = open(&mut net, b, DataStreamDescription::new("again"));
    assert!(net.run_until(Duration::from_secs(2), |n| has(n, b, again, DataEvent::Open)));
    assert_eq!(incoming(&net, a).len(), 1);
}

#[test]
fn pre_negotiated_streams_open_without_dcep_on_both_sides() {
    let mut net = Net::new(8);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    let neg = DataStreamDescription { negotiated: true, id: Some(7), ..DataStreamDescription::new("neg") };
    let sa = open(&mut net, a, neg.clone());
    let sb = open(&mut net, b, neg);
    let now = net.now;
    assert!(matches!(
        net.conn_mut(a.host, a.conn).open_data_stream(
            now,
            DataStreamDescription { negotiated: true, id: Some(7), ..DataStreamDescription::new("dup") }
        ),
        Err(Error::InvalidDescription(_))
    ));
    assert!(
        net.conn_mut(a.host, a.conn)
            .open_data_stream(now, DataStreamDescription { negotiated: true, ..DataStreamDescription::new("x") })
            .is_err(),
        "negotiated needs an id"
    );
    net.signal_dtls(a.at(), b.at());
    assert!(
        net.run_until(Duration::from_secs(5), |n| has(n, a, sa, DataEvent::Open) && has(n, b, sb, DataEvent::Open))
    );
    send(&mut net, a, sa, b"ping", false).unwrap();
    send(&mut net, b, sb, b"pong", false).unwrap();
    net.run_for(Duration::from_millis(500));
    assert_eq!(messages(&net, b, sb), vec![(false, b"ping".to_vec())]);
    assert_eq!(messages(&net, a, sa), vec![(false, b"pong".to_vec())]);
    assert!(incoming(&net, a).is_empty() && incoming(&net, b).is_empty(), "no DCEP for negotiated streams");
}

/// 10% loss with reordering: a reliable ordered stream delivers every
/// message in order; an unordered one with `maxRetransmits: 0` delivers a
/// subset, each message at most once and intact.
#[test]
fn under_loss_and_reordering_reliable_streams_deliver_everything_in_order() {
    let mut net = Net::new(9);
    net.link =
        Link { loss: 0.10, latency: Duration::from_millis(20), jitter: Duration::from_millis(15), ..Link::default() };
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    let reliable = open(&mut net, a, DataStreamDescription::new("reliable"));
    let lossy = open(
        &mut net,
        a,
        DataStreamDescription { ordered: false, max_retransmits: Some(0), ..DataStreamDescription::new("lossy") },
    );
    net.signal_dtls(a.at(), b.at());
    assert!(
        net.run_until(Duration::from_secs(30), |n| has(n, a, reliable, DataEvent::Open)
            && has(n, a, lossy, DataEvent::Open)),
        "{:?}",
        data_events(&net, a)
    );
    let theirs = incoming(&net, b);
    let by_label = |label: &str| {
        *theirs
            .iter()
            .find(|s| net.hosts[b.host].conn(b.conn).data_stream_description(**s).unwrap().label == label)
            .unwrap()
    };
    let (rb, lb) = (by_label("reliable"), by_label("lossy"));
    let d = net.hosts[b.host].conn(b.conn).data_stream_description(lb).unwrap();
    assert_eq!((d.ordered, d.max_retransmits), (false, Some(0)));

    let sizes = [1usize, 100, 1000, 1200, 5000, 16 * 1024, 64 * 1024];
    let n = 300;
    let mut sent = 0;
    let mut i = 0;
    // Writes as the send buffer allows, as an application does.
    while sent < n {
        let m = message(sent, sizes[sent % sizes.len()]);
        match send(&mut net, a, reliable, &m, true) {
            Ok(()) => sent += 1,
            Err(Error::LimitReached(_)) => net.run_for(Duration::from_millis(50)),
            Err(e) => panic!("{e}"),
        }
        if i < 200 {
            send(&mut net, a, lossy, &message(i, 300), true).unwrap();
            i += 1;
        }
        if sent % 20 == 0 {
            net.run_for(Duration::from_millis(20));
        }
    }
    // Simulated time: SCTP's retransmission timer backs off under this
    // loss (stalls of tens of seconds); 120 s was just enough for the
    // loss pattern of 1,200-octet packets and not for 1,000-octet ones.
    assert!(
        net.run_until(Duration::from_secs(300), |net| count(net, b, rb) == n),
        "{} of {n} delivered",
        messages(&net, b, rb).len()
    );
    let got = messages(&net, b, rb);
    for (k, (binary, m)) in got.iter().enumerate() {
        assert!(*binary);
        assert_eq!(*m, message(k, sizes[k % sizes.len()]), "message {k}");
    }
    let lossy_got = messages(&net, b, lb);
    let mut seen = std::collections::HashSet::new();
    for (_, m) in &lossy_got {
        let k = u32::from_be_bytes([m[0], m[1], m[2], m[3]]) as usize;
        assert_eq!(*m, message(k, 300), "intact");
        assert!(seen.insert(k), "message {k} delivered twice");
    }
    assert!(!lossy_got.is_empty() && lossy_got.len() <= 200, "{} of 200", lossy_got.len());
    assert!(net.lost > 0);
}

#[test]
fn buffered_amount_low_fires_and_the_send_buffer_is_bounded() {
    let mut net = Net::new(10);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    let s = open(&mut net, a, DataStreamDescription::new("bulk"));
    net.signal_dtls(a.at(), b.at());
    assert!(net.run_until(Duration::from_secs(5), |n| has(n, a, s, DataEvent::Open)));
    net.conn_mut(a.host, a.conn).set_buffered_amount_low_threshold(s, 64 * 1024);
    let chunk = vec![0x55u8; 60 * 1024];
    let mut accepted = 0;
    loop {
        match send(&mut net, a, s, &chunk, true) {
            Ok(()) => accepted += 1,
            Err(Error::LimitReached(_)) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(accepted < 1000, "the send buffer is never full");
    }
    assert!(net.conn_mut(a.host, a.conn).buffered_amount(s) <= 16 << 20);
    assert!(net.run_until(Duration::from_secs(60), |n| has(n, a, s, DataEvent::BufferedAmountLow)));
    assert!(net.run_until(Duration::from_secs(60), |n| count(n, b, incoming(n, b)[0]) == accepted));
}

#[test]
fn data_needs_dtls_and_closing_the_connection_closes_its_streams() {
    let mut net = Net::new(11);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    net.signal(a.at(), b.at()); // SDES keys: no DTLS
    let now = net.now;
    assert!(matches!(
        net.conn_mut(a.host, a.conn).open_data_stream(now, DataStreamDescription::new("x")),
        Err(Error::NotSupported(_))
    ));

    let mut net = Net::new(12);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    let s = open(&mut net, a, DataStreamDescription::new("x"));
    net.signal_dtls(a.at(), b.at());
    assert!(net.run_until(Duration::from_secs(5), |n| has(n, a, s, DataEvent::Open)));
    let now = net.now;
    net.conn_mut(a.host, a.conn).close(now);
    net.drain();
    assert!(has(&net, a, s, DataEvent::Closed));
    let theirs = incoming(&net, b)[0];
    assert!(net.run_until(Duration::from_secs(5), |n| has(n, b, theirs, DataEvent::Closed)));
}

/// Without loss, a burst of small messages on an unordered stream with
/// `maxRetransmits: 0` all arrive: the SCTP packets they are bundled into
/// fit one DTLS record each (none is dropped as too large and abandoned
/// on retransmission).
#[test]
fn a_burst_of_small_messages_on_a_lossy_stream_arrives_whole_without_loss() {
    let mut net = Net::new(13);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    let lossy = open(
        &mut net,
        a,
        DataStreamDescription { ordered: false, max_retransmits: Some(0), ..DataStreamDescription::new("lossy") },
    );
    net.signal_dtls(a.at(), b.at());
    assert!(net.run_until(Duration::from_secs(5), |n| has(n, a, lossy, DataEvent::Open)));
    let n = 100;
    for i in 0..n {
        send(&mut net, a, lossy, &message(i, 16 + i), true).unwrap();
    }
    let theirs = incoming(&net, b)[0];
    assert!(
        net.run_until(Duration::from_secs(5), |net| count(net, b, theirs) == n),
        "{} of {n} delivered",
        count(&net, b, theirs)
    );
    assert_eq!(net.lost, 0);
}

/// A fork has its own association: the caller and its fork each open a
/// data stream over the one shared socket to their own callee, and each
/// callee sees only its own.
#[test]
fn forks_each_have_their_own_association() {
    let mut net = Net::new(13);
    let caller = peer(&mut net, "caller", [10, 0, 0, 1]);
    let now = net.now;
    let fork = Peer { host: caller.host, conn: net.hosts[caller.host].endpoint.fork(now, caller.conn).unwrap() };
    let b = peer(&mut net, "b", [10, 0, 0, 2]);
    let c = peer(&mut net, "c", [10, 0, 0, 3]);
    let to_b = open(&mut net, caller, DataStreamDescription::new("to b"));
    let to_c = open(&mut net, fork, DataStreamDescription::new("to c"));
    net.signal_dtls(caller.at(), b.at());
    net.signal_dtls(fork.at(), c.at());
    assert!(net.run_until(Duration::from_secs(5), |n| has(n, caller, to_b, DataEvent::Open)
        && has(n, fork, to_c, DataEvent::Open)));
    send(&mut net, caller, to_b, b"hello b", false).unwrap();
    send(&mut net, fork, to_c, b"hello c", false).unwrap();
    net.run_for(Duration::from_millis(200));
    for (callee, label, text) in [(b, "to b", &b"hello b"[..]), (c, "to c", b"hello c")] {
        let theirs = incoming(&net, callee);
        assert_eq!(theirs.len(), 1, "one stream each");
        let d = net.hosts[callee.host].conn(callee.conn).data_stream_description(theirs[0]).unwrap();
        assert_eq!(d.label, label);
        assert_eq!(messages(&net, callee, theirs[0]), vec![(false, text.to_vec())]);
    }
}
