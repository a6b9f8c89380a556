//! Descriptions: the local one (credentials, keys, ICE restart) and the
//! remote one, which keys each socket's SRTP either from the signaled
//! `keys` (RFC 4568 inline form) or by a DTLS-SRTP handshake (RFC
//! 5763/5764) against the signaled fingerprints.

use std::time::{Duration, Instant};

use rtc_dtls::{Dtls, Fingerprint, Role as DtlsRole};
use rtc_ice::Credentials;
use rtc_srtp::Context;
use rtc_srtp::session::{Session, SessionConfig};

use super::Connection;
use super::negotiation::agree;
use super::transport::Transport;
use crate::desc::{ConnectionDescription, Direction, SocketDescription};
use crate::error::Error;
use crate::keys::{Keying, profile, select};
use crate::{SocketConfig, random_ssrc};

/// The DTLS certificate fingerprints a description's sockets list, parsed;
/// ones that do not parse (an unknown hash) are skipped.
pub(crate) fn fingerprints(d: &ConnectionDescription) -> Vec<Fingerprint> {
    d.sockets.iter().flat_map(|s| &s.options.fingerprints).filter_map(|f| Fingerprint::parse(f).ok()).collect()
}

/// The Ta the peer proposed for the local socket at `index` (RFC 8839
/// section 5.5): the `ice-pacing` of its socket at the same position (the
/// one whose candidates that socket takes), else of its first socket (an
/// SDP description has one, from the session-level `a=ice-pacing`); `None`
/// when it proposed none. A value above 10 s is an error.
pub(crate) fn remote_pacing(remote: &ConnectionDescription, index: usize) -> Result<Option<Duration>, Error> {
    remote.sockets.get(index).or(remote.sockets.first()).map_or(Ok(None), |s| s.options.pacing())
}

/// Whether the peer runs ICE lite (RFC 8445 section 2.5) on the local
/// socket at `index`: its socket at the same position, else its first,
/// says `ice-lite` (SDP's session-level `a=ice-lite`).
pub(crate) fn remote_lite(remote: &ConnectionDescription, index: usize) -> bool {
    remote.sockets.get(index).or(remote.sockets.first()).is_some_and(|s| s.options.ice_lite)
}

pub(crate) fn remote_credentials(remote: &ConnectionDescription) -> Result<Credentials, Error> {
    let creds = Credentials {
        ufrag: remote.context_id.clone().unwrap_or_default(),
        pwd: remote.secret.clone().unwrap_or_default(),
    };
    creds.validate().map_err(|e| Error::InvalidDescription(format!("remote context-id/secret: {e}")))?;
    Ok(creds)
}

impl Connection {
    /// The local description: credentials, keys, every socket with its
    /// candidates, options (with its certificate's fingerprint and, once
    /// DTLS keys the call, its `setup`), and the streams sent.
    pub(crate) fn local_description(&self) -> ConnectionDescription {
        let setup = self.dtls_client().map(|client| if client { "active" } else { "passive" }.to_owned());
        let sockets = self
            .transports
            .iter()
            .map(|t| {
                let candidates = t
                    .agent
                    .local_candidates()
                    .cloned()
                    .map(|mut c| {
                        c.socket_id = Some(t.socket_id.clone());
                        c
                    })
                    .collect();
                let mut options = t.options.clone();
                options.fingerprints = vec![t.certificate.fingerprint().to_string()];
                options.setup = setup.clone();
                options.ice_pacing = t.options.signaled_pacing();
                SocketDescription { socket_id: t.socket_id.clone(), candidates, options }
            })
            .collect();
        let keys = if self.local_keys.is_empty() { &self.fallback_keys } else { &self.local_keys };
        let (data, data_streams) = self.local_data();
        ConnectionDescription {
            cname: Some(self.cname.clone()),
            context_id: Some(self.context_id.clone()),
            secret: Some(self.secret.clone()),
            keys: keys.iter().map(Keying::to_crypto).collect(),
            sockets,
            streams: self
                .tracks
                .stream_ids(Direction::Local)
                .into_iter()
                .filter_map(|s| self.tracks.describe(s))
                .collect(),
            data,
            data_streams,
        }
    }

    /// Adds a socket's suites (or the default ones) to the local keys,
    /// keeping the material of suites already there. Once the remote
    /// description is known, the keys stay as they are.
    pub(crate) fn merge_local_keys(&mut self, socket: &SocketConfig) -> Result<(), Error> {
        if self.remote.is_some() {
            return Ok(());
        }
        let wanted: Vec<Keying> = if socket.options.keys.is_empty() {
            self.fallback_keys.clone()
        } else {
            let mut v = Vec::new();
            for k in &socket.options.keys {
                v.push(match k.key_params {
                    Some(_) => Keying::from_crypto(k)?,
                    None => Keying::random(0, profile(&k.crypto_suite)?, &mut self.rng),
                });
            }
            v
        };
        for mut k in wanted {
            if !self.local_keys.iter().any(|l| l.profile == k.profile) {
                k.tag = self.local_keys.len() as u32 + 1;
                self.local_keys.push(k);
            }
        }
        if !self.local_keys.is_empty() {
            // The local keys stand from now on; the fallback is not needed.
            self.fallback_keys = Vec::new();
        }
        Ok(())
    }

    /// Local overrides: `cname`, `context-id`, `secret`, `keys`. New ICE
    /// credentials once sockets are added are an ICE restart (RFC 8445
    /// section 9) on every socket.
    pub(crate) fn set_local(&mut self, now: Instant, d: ConnectionDescription) -> Result<(), Error> {
        let changes_ice = d.context_id.as_ref().is_some_and(|c| *c != self.context_id)
            || d.secret.as_ref().is_some_and(|s| *s != self.secret);
        let creds = Credentials {
            ufrag: d.context_id.clone().unwrap_or_else(|| self.context_id.clone()),
            pwd: d.secret.clone().unwrap_or_else(|| self.secret.clone()),
        };
        creds.validate().map_err(|e| Error::InvalidDescription(format!("context-id/secret: {e}")))?;
        let mut keys = Vec::new();
        for k in &d.keys {
            keys.push(Keying::from_crypto(k)?);
        }
        if !keys.is_empty() && self.remote.is_some() && keys != self.local_keys {
            return Err(Error::NotSupported("changing SRTP keys once the remote description is set (rekeying)"));
        }
        if d.cname.as_ref().is_some_and(|c| *c != self.cname) && self.session.is_some() {
            return Err(Error::NotSupported("changing the cname once media started"));
        }
        if changes_ice && !self.transports.is_empty() {
            tracing::debug!(ufrag = %creds.ufrag, "local ICE credentials changed: ICE restart on every socket");
            // Media keeps the old path until the new checks select a pair.
            self.restart_ice(now, &creds)?;
            self.restart_pending = self.remote.is_some();
        }
        self.context_id = creds.ufrag;
        self.route_gen += 1;
        self.secret = creds.pwd;
        if let Some(c) = d.cname {
            self.cname = c;
        }
        if !keys.is_empty() {
            self.local_keys = keys;
            self.fallback_keys = Vec::new();
        }
        Ok(())
    }

    fn restart_ice(&mut self, now: Instant, creds: &Credentials) -> Result<(), Error> {
        for t in &mut self.transports {
            let _entered = t.span.clone().entered();
            t.agent.restart(now, Some(creds.clone()))?;
        }
        Ok(())
    }

    /// The peer's description: its credentials, keys or fingerprints,
    /// candidates and streams. Everything is checked before anything
    /// changes.
    pub(crate) fn set_remote(&mut self, now: Instant, d: ConnectionDescription) -> Result<(), Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        let creds = remote_credentials(&d)?;
        for s in &d.sockets {
            s.options.pacing()?;
        }
        if (0..self.transports.len()).any(|i| remote_lite(&d, i) && self.transports[i].agent.is_lite()) {
            return Err(Error::InvalidDescription(
                "both sides are ICE lite: neither would check connectivity or obtain consent (RFC 7675)".into(),
            ));
        }
        let dtls = d.keys.is_empty();
        if dtls {
            if fingerprints(&d).is_empty() {
                return Err(Error::InvalidDescription(
                    "the remote description has neither SRTP keys nor a certificate fingerprint; media is never sent \
                     unprotected"
                        .into(),
                ));
            }
            if self.transports.iter().any(|t| !t.options.mux) {
                return Err(Error::NotSupported("DTLS-SRTP on a socket without mux"));
            }
        }
        let mut remote_keys = Vec::new();
        for k in &d.keys {
            // Suites this side does not implement are skipped, as RFC 4568
            // answerers skip unknown crypto attributes.
            match Keying::from_crypto(k) {
                Ok(k) => remote_keys.push(k),
                Err(e) if profile(&k.crypto_suite).is_ok() => return Err(e),
                Err(_) => {}
            }
        }
        let local_keys = if self.local_keys.is_empty() { self.fallback_keys.clone() } else { self.local_keys.clone() };
        if !dtls && select(&local_keys, &remote_keys).is_none() {
            let names = |v: &[Keying]| v.iter().map(|k| k.profile.name()).collect::<Vec<_>>().join(", ");
            return Err(Error::InvalidDescription(format!(
                "no SRTP crypto-suite in common: local lists [{}], remote lists [{}]",
                names(&local_keys),
                names(&remote_keys)
            )));
        }
        let mut new_tracks = 0;
        for s in &d.streams {
            for t in &s.tracks {
                // A track without an SSRC takes the first unannounced SSRC
                // of its kind (see Connection::bind_pending).
                if t.ssrc.is_none_or(|ssrc| !self.tracks.remote_by_ssrc.contains_key(&ssrc)) {
                    new_tracks += 1;
                }
            }
        }
        if d.streams.len() > self.limits.remote_streams
            || self.tracks.count(Direction::Remote) + new_tracks > self.limits.remote_tracks
        {
            return Err(Error::InvalidDescription(format!(
                "more remote streams or tracks than this connection takes ({} streams, {} tracks)",
                self.limits.remote_streams, self.limits.remote_tracks
            )));
        }
        let remote_restart =
            self.remote.as_ref().is_some_and(|old| old.context_id != d.context_id || old.secret != d.secret);
        if self.remote.as_ref().is_some_and(|old| old.keys != d.keys) {
            return Err(Error::NotSupported("changing the remote SRTP keys (rekeying)"));
        }
        // The offerer is decided on the new description.
        let local_offers = self.offers_against(&d);
        let agreement = agree(local_offers, &self.local_options, self.remote_options.as_deref())?;
        // Everything is checked: apply. First the pacing the peer proposed
        // (RFC 8445 section 14.2), before any check of the new description.
        // So is ICE lite, which decides the roles (RFC 8445 section 6.1.1).
        for (i, t) in self.transports.iter_mut().enumerate() {
            t.agent.set_remote_pacing(remote_pacing(&d, i)?)?;
            t.agent.set_remote_lite(now, remote_lite(&d, i))?;
        }
        if remote_restart {
            // The peer restarted ICE. Unless this side restarted first and
            // awaits exactly this, it restarts too, with new credentials
            // that its next local description carries (RFC 8445 section 9).
            tracing::debug!(remote = %creds.ufrag, "the peer restarted ICE (its credentials changed)");
            if !self.restart_pending {
                let fresh = Credentials::random(&mut self.rng);
                self.restart_ice(now, &fresh)?;
                self.context_id = fresh.ufrag;
                self.route_gen += 1;
                self.secret = fresh.pwd;
            }
            self.restart_pending = false;
            for t in &mut self.transports {
                let _entered = t.span.clone().entered();
                t.agent.set_remote_credentials(now, creds.clone())?;
            }
        }
        if d.data.is_some() && !dtls {
            // Data needs DTLS; a description keyed by SDES carries none.
        } else if d.data.is_some() {
            self.enable_data();
        }
        let first = self.remote.is_none();
        self.local_keys = local_keys;
        self.fallback_keys = Vec::new();
        self.remote_keys = remote_keys;
        let before = self.remote.replace(d.clone());
        self.route_gen += 1;
        self.agreement = Some(agreement);
        self.plan_gen += 1;
        self.update_transport_feedback(now);
        if first {
            self.ice_role_fixed = Some(self.ice_role());
            self.dtls_role = self.dtls_client();
            self.span.record("remote", tracing::field::display(&creds.ufrag));
            self.log_keying();
            let role = self.ice_role();
            let mut transports = std::mem::take(&mut self.transports);
            let keyed = transports.iter_mut().try_for_each(|t| {
                let _entered = t.span.clone().entered();
                t.agent.set_role(now, role);
                t.agent.set_remote_credentials(now, creds.clone())?;
                self.key_transport(t, now)
            });
            self.transports = transports;
            keyed?;
            self.start_session(now);
        }
        // Candidates listed in the description go to the socket at the same
        // position; ones the agent cannot use (TCP) are skipped, mDNS names
        // wait to be resolved (`poll_mdns_query`).
        for (i, s) in d.sockets.iter().enumerate() {
            if let Some(t) = self.transports.get_mut(i) {
                let _entered = t.span.clone().entered();
                for c in &s.candidates {
                    if let Err(e) = t.agent.add_remote_candidate(now, c) {
                        tracing::debug!(candidate = %c, "remote candidate skipped: {e}");
                    }
                }
            }
        }
        for s in &d.streams {
            if !self.tracks.streams.iter().any(|r| r.direction == Direction::Remote && r.stream_id == s.stream_id) {
                self.add_remote_stream(s)?;
            }
        }
        if let Some(before) = before {
            self.remote_tracks_gone(&before, &d);
        }
        if !first {
            tracing::debug!(streams = d.streams.len(), ice_restart = remote_restart, "remote description updated");
        }
        self.check_connected();
        Ok(())
    }

    /// Says how the remote description keys the call and who plays which
    /// role (once, when it is first set).
    fn log_keying(&self) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let Some(remote) = self.remote.as_ref() else { return };
        let ice = self.ice_role();
        let (streams, candidates) =
            (remote.streams.len(), remote.sockets.iter().map(|s| s.candidates.len()).sum::<usize>());
        let data = remote.data.is_some();
        match self.dtls_client() {
            Some(client) => tracing::debug!(
                keying = %"DTLS-SRTP",
                dtls = %if client { "client" } else { "server" },
                ?ice,
                fingerprints = fingerprints(remote).len(),
                streams,
                candidates,
                data,
                "remote description set"
            ),
            None => {
                let suite =
                    |from: &[Keying], to: &[Keying]| select(from, to).map_or("none", |(i, _)| from[i].profile.name());
                tracing::debug!(
                    keying = %"SDES",
                    send = %suite(&self.local_keys, &self.remote_keys),
                    receive = %suite(&self.remote_keys, &self.local_keys),
                    ?ice,
                    streams,
                    candidates,
                    "remote description set"
                );
            }
        }
    }

    /// The RTP session, once the remote description is known.
    fn start_session(&mut self, now: Instant) {
        let clock_rates: Vec<(u8, u32)> = self
            .agreement
            .as_ref()
            .map(|a| a.codecs.iter().map(|c| (c.payload_id.get(), c.hz_rate)).collect())
            .unwrap_or_default();
        let wallclock = self.wallclock + now.saturating_duration_since(self.created);
        let mut session = Session::new(
            SessionConfig {
                rtcp_ssrc: random_ssrc(&mut self.rng),
                cname: self.cname.clone(),
                clock_rates,
                seed: rand::Rng::random(&mut self.rng),
                max_incoming: self.limits.remote_tracks,
                ..SessionConfig::default()
            },
            now,
            wallclock,
        );
        let ids: Vec<_> = self.tracks.local_by_ssrc.iter().map(|(s, id)| (*s, *id)).collect();
        for (ssrc, id) in ids {
            let kind = self.tracks.tracks.get(&id).map_or(rtc_codecs::Kind::Audio, |t| t.desc.kind);
            let clock = self.clock_of(kind);
            session.add_outgoing(ssrc, clock, rand::Rng::random(&mut self.rng), rand::Rng::random(&mut self.rng));
        }
        self.session = Some(session);
    }

    /// Keys a transport once the remote description is known: SRTP
    /// contexts from the signaled `keys`, or a DTLS-SRTP association when
    /// the remote sent none (its role from [`Connection::dtls_client`]).
    pub(crate) fn key_transport(&self, t: &mut Transport, now: Instant) -> Result<(), Error> {
        if let (Some(client), Some(remote)) = (self.dtls_client(), &self.remote) {
            let role = if client { DtlsRole::Client } else { DtlsRole::Server };
            // Over ICE with consent: no cookie exchange (see Dtls::over_ice),
            // a round trip less before the keys.
            t.dtls = Some(Box::new(Dtls::with_engine(t.dtls_engine, &t.certificate, role, fingerprints(remote), now)));
        } else {
            let (tx, rx) = self.srtp_contexts()?;
            t.tx = Some(tx);
            t.rx = Some(rx);
        }
        Ok(())
    }

    /// This side's ICE role once the remote description is known: the
    /// offerer controls (RFC 8445 section 6.1.1; see
    /// [`Connection::local_offers`]), so both sides derive the same roles
    /// and no 487 round trip is needed. A peer that disagrees is repaired
    /// by RFC 8445's role-conflict rules. ICE lite comes first (section
    /// 6.1.1: if one agent is lite, the full one controls): a lite side
    /// (its socket's `ice-lite`) is controlled and a side whose peer says
    /// `ice-lite` controls, whichever offered.
    pub(crate) fn ice_role(&self) -> rtc_ice::Role {
        if self.transports.iter().any(|t| t.agent.is_lite()) {
            return rtc_ice::Role::Controlled;
        }
        if self.remote.as_ref().is_some_and(|r| r.sockets.iter().any(|s| s.options.ice_lite)) {
            return rtc_ice::Role::Controlling;
        }
        if let Some(role) = self.ice_role_fixed {
            return role;
        }
        if self.local_offers() { rtc_ice::Role::Controlling } else { rtc_ice::Role::Controlled }
    }

    /// With DTLS-SRTP keying (a remote description without `keys`), whether
    /// this side is the DTLS client: the peer's `setup` decides (RFC 8842:
    /// `active` makes us the server, `passive` the client, `actpass` is an
    /// offer we answer as `active`); without one, the larger `context-id`
    /// is the client.
    pub(crate) fn dtls_client(&self) -> Option<bool> {
        let remote = self.remote.as_ref().filter(|r| r.keys.is_empty())?;
        if let Some(client) = self.dtls_role {
            return Some(client);
        }
        let setup = remote.sockets.iter().find_map(|s| s.options.setup.as_deref());
        Some(match setup {
            Some(s) if s.eq_ignore_ascii_case("active") => false,
            Some(s) if s.eq_ignore_ascii_case("passive") => true,
            Some(_) => true,
            None => self.context_id.as_str() > self.remote_context(),
        })
    }

    /// Each direction uses the sender's first suite the receiver also lists.
    fn srtp_contexts(&self) -> Result<(Context, Context), Error> {
        let (li, _) = select(&self.local_keys, &self.remote_keys).ok_or(Error::NotConnected("no SRTP suite"))?;
        let (ri, _) = select(&self.remote_keys, &self.local_keys).ok_or(Error::NotConnected("no SRTP suite"))?;
        let l = &self.local_keys[li];
        let r = &self.remote_keys[ri];
        Ok((Context::new(l.profile, l.key(), l.salt())?, Context::new(r.profile, r.key(), r.salt())?))
    }
}
