//! Host candidates on the machine's interfaces, on real sockets, in a
//! network namespace of the test's own: each test re-runs itself under
//! `unshare -rn` (a new user and network namespace) after making the
//! interfaces it needs there, so nothing it sends can leave the namespace
//! and the machine's own interfaces play no part. Where `unshare -rn` or
//! `ip` does not work, the tests say so and pass without checking.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use rtc_api::{
    ConnectionDescription, ConnectionEvent, DataEvent, DataStreamDescription, Direction, Events, RtcConnection,
    RtcSocket, SocketOptions, SocketServers,
};
use rtc_candidate::Address;

/// Set, to the test's name, in the copy that runs inside the namespace.
const INSIDE: &str = "RTC_API_NETNS_TEST";

/// An interface `d0` that is up with 10.99.0.1/24, fd99::1/64 and a
/// self-assigned 169.254.7.1/16 (a dummy interface, or one end of a veth
/// pair on kernels without the dummy driver); a bridge `b0` left down with
/// 10.99.2.1/24; loopback up.
const TWO_INTERFACES: &str = r#"set -e
ip link set lo up
if ! ip link add d0 type dummy 2>/dev/null; then
    ip link add d0 type veth peer name d1
    ip link set d1 up
fi
ip addr add 10.99.0.1/24 dev d0
ip addr add fd99::1/64 dev d0 nodad
ip addr add 169.254.7.1/16 dev d0
ip link set d0 up
if ip link add b0 type bridge 2>/dev/null; then
    ip addr add 10.99.2.1/24 dev b0
fi
exec "$@"
"#;

/// Loopback up, nothing else.
const LOOPBACK_ONLY: &str = r#"set -e
ip link set lo up
exec "$@"
"#;

/// Runs the test `name` again (this executable, that test alone) inside a
/// new network namespace prepared by the shell script `setup`; true when it
/// ran there and passed, false when namespaces are not available here.
fn run_inside(name: &str, setup: &str) -> bool {
    let probe = Command::new("unshare").args(["-rn", "ip", "link", "set", "lo", "up"]).output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            println!("skipped: `unshare -rn ip link` fails here: {}", String::from_utf8_lossy(&o.stderr).trim());
            return false;
        }
        Err(e) => {
            println!("skipped: no `unshare` here: {e}");
            return false;
        }
    }
    let exe = std::env::current_exe().expect("the test executable");
    let out = Command::new("unshare")
        .args(["-rn", "sh", "-c", setup, "sh"])
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, name)
        .output()
        .expect("unshare runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "inside the namespace:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the test did not run inside the namespace:\n{stdout}\n{stderr}");
    true
}

/// True in the copy that runs inside the namespace made for `name`.
fn inside(name: &str) -> bool {
    std::env::var(INSIDE).is_ok_and(|v| v == name)
}

fn ips(v: &[&str]) -> BTreeSet<IpAddr> {
    v.iter().map(|s| s.parse().unwrap()).collect()
}

/// `f` within 5 s.
async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), f).await.expect("within 5 s")
}

async fn wait_for(events: &mut Events<ConnectionEvent>, want: impl Fn(&ConnectionEvent) -> bool) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while !want(&events.next().await.expect("event stream ended")) {}
    })
    .await
    .expect("event did not fire within 5 s");
}

/// A data-only call between two connections whose sockets are made with no
/// bind list: both sockets bind exactly `want`, gather candidates on those
/// addresses only, connect, and carry a message each way.
async fn call_over_default_sockets(want: &BTreeSet<IpAddr>) {
    let (a, b) = (RtcConnection::new(None, None).unwrap(), RtcConnection::new(None, None).unwrap());
    let mut sockets = Vec::new();
    for c in [&a, &b] {
        let socket = RtcSocket::new(SocketServers::default(), SocketOptions::default()).await.unwrap();
        let bound: BTreeSet<IpAddr> = socket.local_addrs().iter().map(|s| s.ip()).collect();
        assert_eq!(&bound, want, "bound addresses");
        c.add_socket(&socket).unwrap();
        sockets.push(socket);
    }
    for s in &sockets {
        let gathered: BTreeSet<IpAddr> = s
            .description()
            .candidates
            .iter()
            .map(|c| match &c.address {
                Address::Ip(ip) => *ip,
                other => panic!("host candidate without an IP address: {other:?}"),
            })
            .collect();
        assert_eq!(&gathered, want, "host candidates");
    }
    let mut a_events = a.events();
    let chat = a.create_data_stream(DataStreamDescription::new("chat")).unwrap();
    let mut chat_events = chat.events();
    b.enable_data();
    for (from, to) in [(&a, &b), (&b, &a)] {
        let mut d = from.description(Direction::Local).unwrap();
        d.keys.clear(); // keyed by DTLS-SRTP
        to.set_description(ConnectionDescription::from_json(&d.to_json()).unwrap(), Direction::Remote).unwrap();
    }
    wait_for(&mut a_events, |e| *e == ConnectionEvent::Connected).await;
    assert_eq!(within(chat_events.next()).await, Some(DataEvent::Open));
    let theirs = within(b.accept_data_stream()).await.expect("the peer's stream");
    chat.send_text("hello").unwrap();
    assert_eq!(within(theirs.recv()).await.unwrap().text(), Some("hello"));
    theirs.send_text("back").unwrap();
    assert_eq!(within(chat.recv()).await.unwrap().text(), Some("back"));
    a.close();
    b.close();
}

/// The test `name`: outside the namespace, runs itself again inside one
/// made by `setup`; inside, runs `body` with a two-thread tokio runtime.
fn in_namespace(name: &str, setup: &str, body: impl FnOnce(&tokio::runtime::Runtime)) {
    if inside(name) {
        body(&tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap());
    } else {
        run_inside(name, setup);
    }
}

/// With no bind list, a socket binds every usable interface address, IPv4
/// and IPv6, and not loopback, a link-local address or a down interface's
/// address; a call over those addresses connects. Loopback is there when
/// the application lists it (`RtcSocket::host_addrs(true)`).
#[test]
fn no_bind_list_gathers_on_the_interfaces_not_loopback() {
    in_namespace("no_bind_list_gathers_on_the_interfaces_not_loopback", TWO_INTERFACES, |rt| {
        let want = ips(&["10.99.0.1", "fd99::1"]);
        // A new interface reports itself running a moment after it is set up.
        let t0 = std::time::Instant::now();
        loop {
            let now: BTreeSet<IpAddr> = RtcSocket::host_addrs(false).into_iter().collect();
            if now == want {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(5), "host addresses {now:?}, never {want:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let with_loopback = RtcSocket::host_addrs(true);
        assert_eq!(with_loopback.len(), 4, "{with_loopback:?}");
        assert_eq!(with_loopback[..2].iter().copied().collect::<BTreeSet<_>>(), want, "the interfaces first");
        assert_eq!(with_loopback[2..].iter().copied().collect::<BTreeSet<_>>(), ips(&["127.0.0.1", "::1"]));
        rt.block_on(call_over_default_sockets(&want));
        // Listed explicitly, loopback is bound besides the interfaces.
        rt.block_on(async {
            let servers = SocketServers { bind: with_loopback.clone(), ..SocketServers::default() };
            let s = RtcSocket::new(servers, SocketOptions::default()).await.unwrap();
            let bound: BTreeSet<IpAddr> = s.local_addrs().iter().map(|a| a.ip()).collect();
            assert_eq!(bound, with_loopback.iter().copied().collect());
        });
    });
}

/// On a machine with nothing but loopback, a socket with no bind list
/// falls back to 127.0.0.1 and ::1, and a call over them connects.
#[test]
fn no_bind_list_on_loopback_alone_binds_loopback() {
    in_namespace("no_bind_list_on_loopback_alone_binds_loopback", LOOPBACK_ONLY, |rt| {
        let want = ips(&["127.0.0.1", "::1"]);
        assert_eq!(RtcSocket::host_addrs(false).into_iter().collect::<BTreeSet<_>>(), want);
        rt.block_on(call_over_default_sockets(&want));
    });
}
