//! Statistics of the tracks, and the seeds' periodic reports.

use std::time::Instant;

use super::Connection;
use super::tracks::State;
use crate::StreamId;
use crate::desc::Direction;
use crate::events::{ConnectionEvent, Event, RtpStats, TrackReport};

impl Connection {
    /// The reports of one stream's tracks (those the RTP session knows).
    pub(crate) fn stream_reports(&self, stream: StreamId) -> Vec<TrackReport> {
        let (Some(session), Some(s)) = (&self.session, self.tracks.stream(stream)) else { return Vec::new() };
        let mut out = Vec::new();
        // (A remote track still waiting for its SSRC has no report.)
        for t in s.tracks.iter().filter_map(|t| self.tracks.tracks.get(t)).filter(|t| t.desc.ssrc.is_some()) {
            let ssrc = t.ssrc();
            let fb = match &t.state {
                State::Send(s) => s.feedback,
                State::Receive(r) => r.feedback,
            };
            let given_up = match &t.state {
                State::Receive(r) => r.jitter.as_ref().map(|j| j.stats().lost),
                State::Send(_) => None,
            };
            let mut stats = match s.direction {
                Direction::Local => session.outbound_stats(ssrc).map(|o| RtpStats {
                    packets_sent: Some(o.packets_sent),
                    bytes_sent: Some(o.bytes_sent),
                    packets_lost: o.packets_lost,
                    fraction_lost: o.fraction_lost,
                    jitter: o.jitter,
                    round_trip_time: o.round_trip_time,
                    ..RtpStats::default()
                }),
                Direction::Remote => session.inbound_stats(ssrc).map(|i| RtpStats {
                    packets_received: Some(i.packets_received),
                    bytes_received: Some(i.bytes_received),
                    packets_lost: i.packets_lost,
                    fraction_lost: i.fraction_lost,
                    jitter: i.jitter,
                    ..RtpStats::default()
                }),
            };
            if let Some(stats) = stats.as_mut() {
                stats.nack_count = fb.nacks;
                stats.pli_count = fb.plis;
                stats.fir_count = fb.firs;
                match s.direction {
                    Direction::Local => stats.retransmitted_packets_sent = Some(fb.retransmitted),
                    Direction::Remote => {
                        stats.retransmitted_packets_received = Some(fb.retransmitted);
                        stats.packets_given_up = given_up;
                        if let State::Receive(r) = &t.state {
                            let f = &r.frame_stats;
                            stats.frames_received = Some(f.received);
                            stats.frames_dropped = r.depacketizer.as_ref().map(|(_, d)| d.discarded());
                            stats.jitter_buffer_delay = Some(f.delay.as_secs_f64());
                            stats.jitter_buffer_emitted_count = Some(f.emitted);
                        }
                    }
                }
            }
            if let Some(stats) = stats {
                out.push(TrackReport {
                    stream_id: s.stream_id.clone(),
                    track_id: t.desc.track_id.clone(),
                    ssrc,
                    kind: t.desc.kind,
                    direction: s.direction,
                    stats,
                });
            }
        }
        out
    }

    /// TrackReport for each track, then StreamReport, for every stream.
    fn reports(&mut self) {
        for id in self.tracks.streams.iter().map(|s| s.id).collect::<Vec<_>>() {
            let tracks = self.stream_reports(id);
            let Some(s) = self.tracks.stream(id) else { continue };
            if tracks.is_empty() {
                continue;
            }
            let (stream_id, direction) = (s.stream_id.clone(), s.direction);
            for r in &tracks {
                self.push_event(Event::Connection(ConnectionEvent::TrackReport(r.clone())));
            }
            self.push_event(Event::Connection(ConnectionEvent::StreamReport { stream_id, direction, tracks }));
        }
    }

    /// Fires the reports when their interval is up (while connected).
    pub(crate) fn report_timer(&mut self, now: Instant) {
        if !self.connected {
            self.next_report = None;
            return;
        }
        let due = *self.next_report.get_or_insert(now + self.report_interval);
        if now >= due {
            self.reports();
            self.next_report = Some(now + self.report_interval);
        }
    }
}
