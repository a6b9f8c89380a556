//! N ICE agent pairs in one process, each side's agents sharing one UDP
//! socket on 127.0.0.1 and demultiplexed by ufrag (`rtc_ice::Demux`).
//! Reports the heap bytes per connected agent (allocation-counter, counting
//! agents and routing tables), the time to connect them all, and the CPU
//! time per agent while they keep consent (RFC 7675 checks every 4 to 6 s).
//!
//! Run: `cd benches && cargo bench --bench ice_agents`
//! (`RTC_ICE_AGENTS=N` agent pairs, default 5000 pairs = 10,000 agents;
//! `RTC_ICE_HOLD=SECS` consent phase, default 20; `RTC_ICE_RATE=P` pairs
//! started per second, default 2000).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use rtc_candidate::Component;
use rtc_ice::{Agent, AgentConfig, Demux, Role, State};

struct Side {
    socket: UdpSocket,
    addr: SocketAddr,
    agents: Vec<Agent>,
    demux: Demux<u32>,
    timers: BinaryHeap<Reverse<(Instant, u32)>>,
    /// The one live timer entry of each agent (older heap entries are stale).
    scheduled: Vec<Option<Instant>>,
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (USER_HZ = 100 on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

struct World {
    sides: [Side; 2],
    packets: u64,
}

impl World {
    fn new(n: usize) -> Self {
        let mk = || {
            let socket = UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1");
            socket.set_nonblocking(true).expect("nonblocking");
            let addr = socket.local_addr().expect("addr");
            Side {
                socket,
                addr,
                agents: Vec::with_capacity(n),
                demux: Demux::new(),
                timers: BinaryHeap::new(),
                scheduled: vec![None; n],
            }
        };
        let mut w = World { sides: [mk(), mk()], packets: 0 };
        let now = Instant::now();
        for i in 0..n {
            let a = Agent::new(AgentConfig { role: Role::Controlling, ..AgentConfig::default() }).expect("agent");
            let b = Agent::new(AgentConfig { role: Role::Controlled, ..AgentConfig::default() }).expect("agent");
            let k = u32::try_from(i).expect("fits");
            w.sides[0].demux.register(&a.local_credentials().ufrag, k);
            w.sides[1].demux.register(&b.local_credentials().ufrag, k);
            w.sides[0].agents.push(a);
            w.sides[1].agents.push(b);
        }
        let _ = now;
        w
    }

    /// Starts pair `k`: candidates and credentials exchanged, checks begin.
    fn start(&mut self, k: u32) {
        let now = Instant::now();
        let [sa, sb] = &mut self.sides;
        let (a, b) = (&mut sa.agents[k as usize], &mut sb.agents[k as usize]);
        let ha = a.add_host_candidate(now, Component::RTP, sa.addr).expect("host");
        let hb = b.add_host_candidate(now, Component::RTP, sb.addr).expect("host");
        a.end_of_local_candidates(now);
        b.end_of_local_candidates(now);
        a.set_remote_credentials(now, b.local_credentials().clone()).expect("creds");
        b.set_remote_credentials(now, a.local_credentials().clone()).expect("creds");
        a.add_remote_candidate(now, &hb).expect("remote");
        b.add_remote_candidate(now, &ha).expect("remote");
        a.end_of_remote_candidates(now);
        b.end_of_remote_candidates(now);
        for side in &mut self.sides {
            Self::flush(side, k, now, &mut self.packets);
        }
    }

    fn flush(side: &mut Side, k: u32, now: Instant, packets: &mut u64) {
        let agent = &mut side.agents[k as usize];
        while let Some(t) = agent.poll_transmit() {
            side.demux.note_transmit(now, k, &t);
            // A full socket buffer loses the datagram; the agent retransmits.
            let _ = side.socket.send_to(&t.contents, t.destination);
            *packets += 1;
        }
        while agent.poll_event().is_some() {}
        if let Some(t) = agent.poll_timeout() {
            let slot = &mut side.scheduled[k as usize];
            if slot.is_none_or(|s| t < s) {
                *slot = Some(t);
                side.timers.push(Reverse((t, k)));
            }
        }
    }

    /// One turn: read both sockets dry, fire due timers. Returns whether
    /// anything happened.
    fn turn(&mut self, buf: &mut [u8]) -> bool {
        let mut busy = false;
        for s in 0..2 {
            let side = &mut self.sides[s];
            loop {
                let (n, from) = match side.socket.recv_from(buf) {
                    Ok(x) => x,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => continue,
                };
                busy = true;
                let Some(k) = side.demux.route(&buf[..n]) else { continue };
                let now = Instant::now();
                let local = side.addr;
                let _ = side.agents[k as usize].handle_receive(now, local, from, &buf[..n]);
                Self::flush(side, k, now, &mut self.packets);
            }
            let now = Instant::now();
            while side.timers.peek().is_some_and(|Reverse((t, _))| *t <= now) {
                let Some(Reverse((t, k))) = side.timers.pop() else { break };
                if side.scheduled[k as usize] != Some(t) {
                    continue; // stale
                }
                side.scheduled[k as usize] = None;
                let agent = &mut side.agents[k as usize];
                if agent.poll_timeout().is_some_and(|t| t <= now) {
                    agent.handle_timeout(now);
                    busy = true;
                }
                Self::flush(side, k, now, &mut self.packets);
            }
        }
        busy
    }

    fn connected(&self) -> usize {
        self.sides.iter().map(|s| s.agents.iter().filter(|a| a.state() == State::Connected).count()).sum()
    }

    fn expire(&mut self, now: Instant) {
        for s in &mut self.sides {
            s.demux.expire(now);
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let pairs: usize = std::env::var("RTC_ICE_AGENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let rate: f64 = std::env::var("RTC_ICE_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(2000.0);
    let hold: u64 = std::env::var("RTC_ICE_HOLD").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let agents = 2 * pairs;
    let mut buf = vec![0u8; 2048];

    let mut world = None;
    let start = Instant::now();
    let built = allocation_counter::measure(|| {
        let mut w = World::new(pairs);
        let begin = Instant::now();
        let deadline = begin + Duration::from_secs(120);
        let mut started = 0usize;
        while w.connected() < agents && Instant::now() < deadline {
            // Admit new pairs at a steady rate, as a server admits sessions.
            let due = ((begin.elapsed().as_secs_f64() * rate) as usize).min(pairs);
            while started < due {
                w.start(u32::try_from(started).expect("fits"));
                started += 1;
            }
            for _ in 0..64 {
                if !w.turn(&mut buf) {
                    std::thread::sleep(Duration::from_micros(200));
                    break;
                }
            }
        }
        // Forget finished transactions, as a long-running driver would.
        w.expire(Instant::now() + Duration::from_secs(3600));
        world = Some(w);
    });
    let connect_time = start.elapsed();
    let Some(mut w) = world else { return };
    let connected = w.connected();
    println!("ice_agents: {agents} agents ({pairs} pairs), 2 UDP sockets on 127.0.0.1, demultiplexed by ufrag");
    println!(
        "  connected: {connected}/{agents} in {:.2} s (pairs started at {rate} per second)",
        connect_time.as_secs_f64()
    );
    println!(
        "  heap held once connected: {} bytes total, {} bytes per agent (agents + routing tables)",
        built.bytes_current,
        built.bytes_current / agents as i64
    );
    println!(
        "  inline size of one Agent: {} bytes (included above: the Vec<Agent> is heap)",
        std::mem::size_of::<Agent>()
    );

    // Hold: consent checks keep flowing; count CPU per agent.
    let packets0 = w.packets;
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut last_expire = t0;
    let peak = allocation_counter::measure(|| {
        while t0.elapsed() < Duration::from_secs(hold) {
            if !w.turn(&mut buf) {
                std::thread::sleep(Duration::from_micros(500));
            }
            if last_expire.elapsed() > Duration::from_secs(1) {
                w.expire(Instant::now());
                last_expire = Instant::now();
            }
        }
    });
    let cpu = cpu_seconds() - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    let still = w.connected();
    let consent: u64 = w.sides.iter().flat_map(|s| s.agents.iter()).map(|a| a.stats().consent_checks).sum();
    println!("  hold {wall:.1} s: {still}/{agents} still connected, {consent} consent checks in total");
    println!(
        "  packets sent while holding: {} ({:.0}/s); CPU {:.2} s = {:.1} µs per agent per second ({:.1}% of one core)",
        w.packets - packets0,
        (w.packets - packets0) as f64 / wall,
        cpu,
        cpu / wall / agents as f64 * 1e6,
        cpu / wall * 100.0
    );
    println!("  heap growth while holding: {} bytes (peak extra {} bytes)", peak.bytes_current, peak.bytes_max);
}
