//! Time: what is due when, and moving time on.

use std::time::Instant;

use rtc_srtp::session::Session;

use super::Connection;

impl Connection {
    /// Moves time on to `now`: ICE checks, consent and retransmissions,
    /// DTLS retransmissions, reports.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _span = self.entered();
        self.last_now = now;
        for t in &mut self.transports {
            let _entered = t.span.clone().entered();
            if t.agent.poll_timeout().is_some_and(|at| at <= now) {
                t.agent.handle_timeout(now);
            }
            if let Some(d) = t.dtls.as_mut()
                && d.poll_timeout().is_some_and(|at| at <= now)
            {
                d.handle_timeout(now);
            }
        }
        self.drive_transports(now);
        self.handle_data_timeout(now);
        self.drive_data(now);
        self.recovery_timeout(now);
        self.report_timer(now);
    }

    /// When [`Connection::handle_timeout`] is due next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut at = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for t in &self.transports {
            at(t.agent.poll_timeout());
            at(t.dtls.as_ref().and_then(|d| d.poll_timeout()));
        }
        at(self.data_timeout());
        if self.connected {
            at(self.recovery_poll_timeout());
            at(self.twcc.as_ref().and_then(|r| r.poll_timeout()));
            at(self.remb_due());
            at(self.pacer_timeout());
            at(self.session.as_ref().and_then(Session::poll_timeout));
            at(Some(self.next_report.unwrap_or(self.last_now)));
        }
        next
    }
}
