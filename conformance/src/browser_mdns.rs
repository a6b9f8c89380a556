//! mDNS candidates with headless Chromium: rtc offers a data channel,
//! Chromium answers with its host candidates hidden behind `<uuid>.local`
//! names (draft-ietf-mmusic-mdns-ice-candidates, Chromium's default), and
//! rtc must resolve them with Chromium's own mDNS responder (RFC 6762)
//! and connect over a resolved host candidate, not a peer-reflexive one.
//!
//! Run inside a network namespace of its own (`rtc-conformance
//! browser-mdns` under `unshare -rn`, see `in_mdns_namespace`) that has
//! loopback and a veth pair `rtcm0` (10.77.0.1/24) ↔ `rtcm1` (10.77.0.2/24):
//! Chromium's responder answers on non-loopback interfaces only, and a
//! multicast sent out of one end of the pair arrives at the other, so
//! queries and answers cross the pair and nothing leaves the namespace.
//! rtc binds 10.77.0.1.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rtc_api::{
    ConnectionDescription, DataStreamDescription, Direction, RtcConnection, RtcSocket, SocketEvent, SocketOptions,
    SocketServers,
};
use rtc_candidate::{Address, Candidate, CandidateKind};
use rtc_codecs::Options;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::browser::{CHROMIUM_FLAGS, posted_to, serve};
use crate::runner::Context;

/// rtc's address in the namespace (the `rtcm0` end of the veth pair).
const RTC_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

/// Runs this runner's executable with `args` in a new network namespace
/// with loopback up and a veth pair, both ends in the namespace
/// (`rtcm0` 10.77.0.1/24, `rtcm1` 10.77.0.2/24): multicast works there
/// (mDNS), and no traffic can leave. Returns the standard output, trimmed;
/// on failure the standard error.
pub(crate) fn in_mdns_namespace(ctx: &Context, args: &[&str]) -> Result<String, String> {
    let setup = "ip link set lo up && ip link add rtcm0 type veth peer name rtcm1 \
                 && ip addr add 10.77.0.1/24 dev rtcm0 && ip addr add 10.77.0.2/24 dev rtcm1 \
                 && ip link set rtcm0 up && ip link set rtcm1 up && ip route add default dev rtcm0";
    crate::browser::in_namespace(ctx, setup, "network namespace for the mDNS case", args)
}

/// Runs the case; returns a one-line summary.
///
/// With `conceal`, the other way: rtc's socket hides its host address
/// behind a `.local` name (`mdns-host-names`) and answers for it, which the
/// offer must show; rtc is given Chromium's answer without its candidates,
/// so that only Chromium's checks, sent once it resolved rtc's name through
/// rtc's responder, can connect; Chromium's selected pair must have a host
/// candidate as its remote (rtc's) candidate.
pub fn chromium_mdns(root: &Path, chromium: OsString, conceal: bool) -> Result<String, String> {
    if std::env::var_os("RUST_LOG").is_some() {
        let filter = tracing_subscriber::EnvFilter::from_default_env();
        let _ =
            tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).try_init();
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(call(root, chromium, conceal))
}

async fn call(root: &Path, chromium: OsString, conceal: bool) -> Result<String, String> {
    let page = std::fs::read_to_string(root.join("conformance/peers/chromium_mdns.html")).map_err(|e| e.to_string())?;
    let conn = RtcConnection::new(None, Some(Options::default())).map_err(|e| e.to_string())?;
    let servers =
        SocketServers { bind: vec![IpAddr::V4(RTC_ADDR)], mdns_host_names: conceal, ..SocketServers::default() };
    let socket = RtcSocket::new(servers, SocketOptions::default()).await.map_err(|e| e.to_string())?;
    let mut socket_events = socket.events();
    conn.add_socket(&socket).map_err(|e| e.to_string())?;
    let _stream = conn.create_data_stream(DataStreamDescription::new("mdns")).map_err(|e| e.to_string())?;
    let mut offer = conn.description(Direction::Local).ok_or("no local description")?;
    offer.keys.clear();
    let offer = offer.to_sdp(&Options::default()).map_err(|e| e.to_string())?;
    if conceal && (!offer.contains(".local ") || offer.contains(&RTC_ADDR.to_string())) {
        return Err(format!("our offer should hide {RTC_ADDR} behind a .local name:\n{offer}"));
    }

    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let (tx, mut posted) = mpsc::channel(4);
    tokio::spawn(serve(listener, "/mdns.html", page, offer, tx));
    let profile = std::env::temp_dir().join(format!("rtc-chromium-mdns-{}", std::process::id()));
    // Chromium's flags without the one that turns mDNS candidates off, and
    // without the fake media UI, which grants media permission: Chromium
    // shows its host addresses to a page that has it.
    let flags = CHROMIUM_FLAGS
        .iter()
        .filter(|f| !f.contains("WebRtcHideLocalIpsWithMdns") && !f.contains("fake-ui") && !f.contains("fake-device"));
    let mut browser = tokio::process::Command::new(&chromium)
        .args(flags)
        .arg("--enable-features=WebRtcHideLocalIpsWithMdns")
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("http://127.0.0.1:{port}/mdns.html"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("run {chromium:?}: {e}"))?;
    let result = async {
        let answer = posted_to(&mut posted, "/answer").await?;
        let candidates: Vec<&str> = answer.lines().filter(|l| l.starts_with("a=candidate:")).collect();
        let hidden = candidates.iter().filter(|l| l.contains(".local ")).count();
        let shown: Vec<&&str> =
            candidates.iter().filter(|l| l.contains("typ host") && !l.contains(".local ")).collect();
        if hidden == 0 || !shown.is_empty() {
            return Err(format!("Chromium's answer should hide every host address behind a .local name:\n{answer}"));
        }
        // Concealing, rtc takes none of Chromium's candidates: only
        // Chromium's checks can connect.
        let taken: String =
            answer.split_inclusive('\n').filter(|l| !(conceal && l.starts_with("a=candidate:"))).collect();
        let (d, _) = ConnectionDescription::from_sdp(&taken).map_err(|e| e.to_string())?;
        conn.set_description(d, Direction::Remote).map_err(|e| e.to_string())?;
        let asked = Instant::now();
        // Every pair rtc selects, in order, until the call is up and a
        // selected pair's remote candidate is a resolved host candidate.
        let mut selected = Vec::new();
        let mut connected = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let resolved = loop {
            if connected.is_none() && conn.is_connected() {
                connected = Some(asked.elapsed());
            }
            let host = selected.iter().rev().find(|(_, r): &&(Duration, Candidate)| {
                r.kind.kind() == CandidateKind::Host && matches!(r.address, Address::Ip(_))
            });
            if let Some((at, remote)) = host
                && connected.is_some()
            {
                break Some((*at, remote.clone()));
            }
            if conceal && connected.is_some() {
                break None;
            }
            let wait = (tokio::time::Instant::now() + Duration::from_millis(20)).min(deadline);
            match tokio::time::timeout_at(wait, socket_events.next()).await {
                Ok(Some(SocketEvent::ActiveCandidate { remote, .. })) => selected.push((asked.elapsed(), remote)),
                Ok(Some(_)) => {}
                Ok(None) => return Err("the socket's events ended".to_owned()),
                Err(_) if tokio::time::Instant::now() < deadline => {}
                Err(_) => {
                    let seen: Vec<String> = selected.iter().map(|(t, r)| format!("{r} at {t:?}")).collect();
                    return Err(format!(
                        "no resolved host candidate selected within 10 s (connected: {connected:?}); selected: \
                         {seen:?}"
                    ));
                }
            }
        };
        let report = posted_to(&mut posted, "/result").await?;
        let report: serde_json::Value = serde_json::from_str(&report).map_err(|e| format!("{e}: {report}"))?;
        if report["channel"] != "mdns" {
            return Err(format!("Chromium did not open our data channel: {report}"));
        }
        let connected_ms = connected.unwrap_or_default().as_secs_f64() * 1000.0;
        let Some((at, remote)) = resolved else {
            // Concealing: Chromium reached rtc over a host candidate, which
            // only resolving rtc's name could give it.
            if report["remote"]["type"] != "host" {
                return Err(format!("Chromium's selected pair has no host candidate of rtc's: {report}"));
            }
            let theirs = selected.last().map(|(_, r)| r.kind.to_string()).unwrap_or_default();
            return Ok(format!(
                "our offer hid {RTC_ADDR} behind a .local name and rtc took none of Chromium's candidates; Chromium \
                 resolved the name through rtc's responder and its checks connected the call (ICE and DTLS) \
                 {connected_ms:.0} ms after the answer, the data channel opened; Chromium's view of the pair: local \
                 {}, remote {} (rtc's); rtc's remote candidate: {theirs}",
                report["local"], report["remote"],
            ));
        };
        let Address::Ip(ip) = remote.address else { unreachable!("matched above") };
        if answer.contains(&format!(" {ip} ")) {
            return Err(format!("{ip} was in Chromium's answer, not resolved: {answer}"));
        }
        let first = selected.first().map(|(_, r)| r.kind.to_string()).unwrap_or_default();
        Ok(format!(
            "Chromium's answer hid its {hidden} host candidates behind .local names; rtc resolved them by mDNS and \
             selected a host candidate at {ip}:{} ({:.0} ms after the answer; first selected remote candidate: \
             {first}); connected (ICE and DTLS) {connected_ms:.0} ms after the answer, the data channel opened; \
             Chromium's view of the pair: local {}, remote {}",
            remote.port,
            at.as_secs_f64() * 1000.0,
            report["local"],
            report["remote"],
        ))
    }
    .await;
    conn.close();
    let _ = browser.kill().await;
    let _ = std::fs::remove_dir_all(&profile);
    result
}
