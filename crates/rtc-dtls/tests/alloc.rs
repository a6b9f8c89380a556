//! Buffers are recycled: moving datagrams and received application data
//! out of the machine allocates nothing, and a steady flow of application
//! data allocates only what the DTLS engine itself does.
//!
//! dimpl 0.9 allocates a few times per record it seals or opens (its
//! transmit queue drops each datagram's buffer instead of returning it to
//! its pool); instrumenting `Dtls::step` showed this crate's own part (the
//! drain into its queues) at zero allocations in the steady state.

mod common;

use common::Pair;
use rtc_dtls::Certificate;

const RECORDS: usize = 8;
const ROUNDS: usize = 16;

fn allocations(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).count_total
}

fn round(p: &mut Pair, wire: &mut [u8], out: &mut [u8], payload: &[u8]) {
    for _ in 0..RECORDS {
        p.client.dtls.send_application_data(payload).unwrap();
    }
    while let Some(n) = p.client.dtls.poll_transmit(wire) {
        p.server.dtls.handle_datagram(p.now, &wire[..n]);
    }
    while let Some(n) = p.server.dtls.poll_application_data(out) {
        assert_eq!(n, payload.len());
    }
}

#[test]
fn steady_application_data_reuses_buffers() {
    assert_eq!(allocations(|| drop(std::hint::black_box(vec![1u8; 64]))), 1);
    let (a, b) = (Certificate::generate().unwrap(), Certificate::generate().unwrap());
    let mut p = Pair::new(&a, &b);
    p.connect();
    let (mut wire, mut out) = ([0u8; 1500], [0u8; 1500]);
    let payload = [7u8; 1000];
    // Warm up: spare buffers and the engine's pools fill.
    for _ in 0..4 {
        round(&mut p, &mut wire, &mut out, &payload);
    }
    // Taking datagrams and data out never allocates.
    p.client.dtls.send_application_data(&payload).unwrap();
    let mut len = 0;
    assert_eq!(allocations(|| len = p.client.dtls.poll_transmit(&mut wire).unwrap()), 0);
    p.server.dtls.handle_datagram(p.now, &wire[..len]);
    assert_eq!(allocations(|| assert!(p.server.dtls.poll_application_data(&mut out).is_some())), 0);
    assert_eq!(allocations(|| assert!(p.server.dtls.poll_event().is_none())), 0);

    let n = allocations(|| {
        for _ in 0..ROUNDS {
            round(&mut p, &mut wire, &mut out, &payload);
        }
    });
    let records = (RECORDS * ROUNDS) as u64;
    println!("{records} records sealed and opened: {n} allocations (the engine's)");
    assert!(n <= 8 * records, "{n} allocations for {records} records");
}
