//! ICE-TCP with headless Chromium while UDP is blocked: rtc offers a data
//! channel with ICE-TCP candidates (`"ice-tcp": true`), Chromium answers,
//! and nothing but TCP can carry the call, since every UDP datagram in the
//! namespace is dropped (nft). The case passes when the data channel
//! opens and both ends' selected pairs are TCP ones.
//!
//! Run inside a network namespace of its own (`rtc-conformance
//! browser-tcp` under `unshare -rn`, see `in_tcp_namespace`): loopback
//! (the page is served there) and a veth pair `rtcm0` (10.77.0.1/24) ↔
//! `rtcm1` (10.77.0.2/24), as in the mDNS case; nft drops UDP on output.
//! rtc binds 10.77.0.1; nothing leaves the namespace.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use rtc_api::{
    ConnectionDescription, DataStreamDescription, Direction, RtcConnection, RtcSocket, SocketOptions, SocketServers,
};
use rtc_codecs::Options;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::browser::{launch, posted_to, serve};
use crate::runner::Context;

/// rtc's address in the namespace.
const RTC_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

/// Runs this runner's executable with `args` in a new network namespace
/// with loopback, the veth pair of the mDNS case, and every UDP datagram
/// dropped on output. Returns the standard output, trimmed; on failure the
/// standard error.
pub(crate) fn in_tcp_namespace(ctx: &Context, args: &[&str]) -> Result<String, String> {
    let setup = "ip link set lo up && ip link add rtcm0 type veth peer name rtcm1 \
                 && ip addr add 10.77.0.1/24 dev rtcm0 && ip addr add 10.77.0.2/24 dev rtcm1 \
                 && ip link set rtcm0 up && ip link set rtcm1 up && ip route add default dev rtcm0 \
                 && nft add table inet rtc_no_udp \
                 && nft add chain inet rtc_no_udp out '{ type filter hook output priority 0; policy accept; }' \
                 && nft add rule inet rtc_no_udp out meta l4proto udp drop";
    crate::browser::in_namespace(ctx, setup, "network namespace for the ICE-TCP case", args)
}

/// Runs the case; returns a one-line summary.
pub fn chromium_tcp(root: &Path, chromium: OsString) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(call(root, chromium))
}

async fn call(root: &Path, chromium: OsString) -> Result<String, String> {
    // The mDNS case's page: it answers a data-channel offer and reports
    // the selected pair.
    let page = std::fs::read_to_string(root.join("conformance/peers/chromium_mdns.html")).map_err(|e| e.to_string())?;
    let conn = RtcConnection::new(None, Some(Options::default())).map_err(|e| e.to_string())?;
    let servers = SocketServers { bind: vec![IpAddr::V4(RTC_ADDR)], ice_tcp: true, ..SocketServers::default() };
    let socket = RtcSocket::new(servers, SocketOptions::default()).await.map_err(|e| e.to_string())?;
    conn.add_socket(&socket).map_err(|e| e.to_string())?;
    let _stream = conn.create_data_stream(DataStreamDescription::new("tcp")).map_err(|e| e.to_string())?;
    let mut offer = conn.description(Direction::Local).ok_or("no local description")?;
    offer.keys.clear();
    let offer = offer.to_sdp(&Options::default()).map_err(|e| e.to_string())?;
    if !offer.contains(" tcp ") {
        return Err(format!("our offer has no TCP candidate:\n{offer}"));
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let (tx, mut posted) = mpsc::channel(4);
    tokio::spawn(serve(listener, "/mdns.html", page, offer, tx));
    let profile = std::env::temp_dir().join(format!("rtc-chromium-tcp-{}", std::process::id()));
    let mut browser = launch(&chromium, &format!("http://127.0.0.1:{port}/mdns.html"), &profile)?;
    let result = async {
        let answer = posted_to(&mut posted, "/answer").await?;
        let theirs: Vec<&str> =
            answer.lines().filter(|l| l.starts_with("a=candidate:") && l.contains(" tcp ")).collect();
        let (d, _) = ConnectionDescription::from_sdp(&answer).map_err(|e| e.to_string())?;
        let asked = Instant::now();
        conn.set_description(d, Direction::Remote).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while !conn.is_connected() {
            if Instant::now() > deadline {
                return Err(format!(
                    "not connected within 15 s; Chromium's TCP candidates: {theirs:?}; our pairs: {:?}",
                    conn.candidate_pairs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let connected_ms = asked.elapsed().as_secs_f64() * 1000.0;
        let report = posted_to(&mut posted, "/result").await?;
        let report: serde_json::Value = serde_json::from_str(&report).map_err(|e| format!("{e}: {report}"))?;
        if report["channel"] != "tcp" {
            return Err(format!("Chromium did not open our data channel: {report}"));
        }
        let ours = conn.candidate_pairs().into_iter().find(|p| p.selected).ok_or("no selected pair")?;
        if ours.protocol != "tcp" || report["local"]["protocol"] != "tcp" {
            return Err(format!("the selected pairs are not TCP ones: ours {ours:?}; Chromium's {report}"));
        }
        Ok(format!(
            "UDP dropped; Chromium's answer had {} TCP candidates ({}); connected (ICE and DTLS) {connected_ms:.0} ms \
             after the answer over {} {} (tcptype {}) -> {} {}, the data channel opened; Chromium's view of the pair: \
             local {}, remote {}",
            theirs.len(),
            theirs
                .iter()
                .filter_map(|l| l.split(" tcptype ").nth(1))
                .map(|t| t.split(' ').next().unwrap_or(t))
                .collect::<Vec<_>>()
                .join(", "),
            ours.local_candidate_type,
            ours.local_address,
            ours.tcp_type.unwrap_or("?"),
            ours.remote_candidate_type,
            ours.remote_address,
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
