//! Offer/answer negotiation of two options dictionaries (RFC 3264 section 6.1,
//! RFC 8829 section 5.3.1), to one agreement both peers compute alike.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::error::{NegotiateError, Side};
use crate::rules::{self, Family, family, is_helper, merge_feedback, merge_parameters, same_format};
use crate::types::{Codec, Constraints, Dimension, HeaderExtension, Kind, MediaConstraints, Options, PayloadType};

/// What two peers agreed: the codecs both use (in the offerer's order, with
/// the payload type both use), the header extensions, and the resolved
/// constraints. It serializes as an options dictionary plus `effective`, the
/// limits in force per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agreement {
    /// Agreed codecs, offerer's order.
    pub codecs: Vec<Codec>,
    /// Agreed header extensions, offerer's order and IDs.
    pub header_extensions: Vec<HeaderExtension>,
    /// The required limits of both sides combined.
    pub required: Constraints,
    /// The optional limits that could be applied on top.
    pub optional: Constraints,
}

impl Agreement {
    /// The limits in force for `kind`: an accepted optional bound where there
    /// is one, else the required bound.
    pub fn effective(&self, kind: Kind) -> MediaConstraints {
        let (r, o) = (self.required.get(kind), self.optional.get(kind));
        let mut e = MediaConstraints::default();
        for d in Dimension::ALL {
            e.set_max(d, o.max(d).or(r.max(d)));
            e.set_min(d, o.min(d).or(r.min(d)));
        }
        e
    }

    /// The agreement as an options dictionary (what to negotiate with next).
    pub fn to_options(&self) -> Options {
        Options {
            codecs: self.codecs.clone(),
            header_extensions: self.header_extensions.clone(),
            required: self.required,
            optional: self.optional,
        }
    }

    /// The agreed codecs of one kind, in order.
    pub fn codecs_of(&self, kind: Kind) -> impl Iterator<Item = &Codec> {
        self.codecs.iter().filter(move |c| c.kind == kind)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AgreementJson {
    #[serde(flatten)]
    options: Options,
    effective: Constraints,
}

impl Serialize for Agreement {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut effective = Constraints::default();
        for k in Kind::ALL {
            effective.set(k, self.effective(k));
        }
        AgreementJson { options: self.to_options(), effective }.serialize(s)
    }
}

/// One agreed entry: indexes into the offer and answer, and the merge.
struct Pick {
    offer: usize,
    answer_pt: PayloadType,
    codec: Codec,
}

fn merged(x: &Codec, y: &Codec) -> Codec {
    Codec {
        payload_id: x.payload_id,
        kind: x.kind,
        name: x.name.clone(),
        hz_rate: x.hz_rate,
        // Canonical: audio states its channel count only when it is not 1.
        channels: (x.kind == Kind::Audio && x.channel_count() != 1).then(|| x.channel_count()),
        parameters: merge_parameters(x, y),
        rtcp_feedback: merge_feedback(x, y),
    }
}

/// The answer entry for offered `x` among the candidates: the one with the
/// same payload type if there is one (RFC 3264 section 6.1 asks answers to
/// reuse the offer's numbers), else the first in the answerer's order.
fn pick_answer<'a>(x: &Codec, mut candidates: impl Iterator<Item = &'a Codec> + Clone) -> Option<&'a Codec> {
    candidates.clone().find(|y| y.payload_id == x.payload_id).or_else(|| candidates.next())
}

/// The redundancy list of a RED entry (RFC 2198 section 5: `a=fmtp:PT a/b/…`),
/// `Ok(None)` when it has none, `Err` when it is not a list of payload types.
fn red_list(c: &Codec) -> Result<Option<Vec<u8>>, ()> {
    let Some((key, _)) = c.parameters.iter().find(|(_, v)| v.is_empty()) else { return Ok(None) };
    key.split('/').map(|t| t.parse::<u8>().ok().filter(|v| *v <= 127).ok_or(())).collect::<Result<_, _>>().map(Some)
}

fn red_param(list: &[u8]) -> String {
    list.iter().map(u8::to_string).collect::<Vec<_>>().join("/")
}

/// Negotiates the offerer's options with the answerer's.
///
/// Codecs match on kind, name (without case), clock rate, channels (audio
/// defaults to 1) and the codec's format key (H.264 packetization-mode and
/// sub-profile, H.265 profile, tier and tx-mode, VP9 `profile-id`, AV1
/// `profile`). Each agreed codec keeps the
/// offerer's payload type and position; parameters and feedback are merged
/// by the rules of [`crate`]'s docs. RED needs the codecs it lists, RTX the
/// codec its `apt` names; they are dropped with them. Required constraints
/// drop codecs that cannot meet them, and fail naming the constraint when no
/// codec of that kind is left. Payload types that collide across kinds in the
/// one RTP session of a BUNDLE group (RFC 8843 section 9.1.1) are resolved in
/// the offerer's order: the later codec moves to the lowest free dynamic
/// value (96-127, then 35-63).
pub fn negotiate(offer: &Options, answer: &Options) -> Result<Agreement, NegotiateError> {
    offer.validate().map_err(|source| NegotiateError::Invalid { side: Side::Offer, source })?;
    answer.validate().map_err(|source| NegotiateError::Invalid { side: Side::Answer, source })?;
    let (required, optional) = resolve_constraints(offer, answer)?;

    // Pass 1: media codecs and helpers that stand alone (CN, telephone-event, ULPFEC).
    let standalone = |c: &&Codec| !matches!(family(c), Family::Rtx | Family::Red);
    let mut picks = Vec::new();
    for (i, x) in offer.codecs.iter().enumerate().filter(|(_, x)| standalone(x)) {
        let candidates = answer.codecs.iter().filter(standalone).filter(|y| same_format(x, y));
        if let Some(y) = pick_answer(x, candidates) {
            picks.push(Pick { offer: i, answer_pt: y.payload_id, codec: merged(x, y) });
        }
    }

    // Required constraints drop the media codecs that cannot meet them.
    for kind in Kind::ALL {
        let req = required.get(kind);
        let is_media = |p: &Pick| p.codec.kind == kind && !is_helper(&p.codec);
        let before = picks.iter().filter(|p| is_media(p)).count();
        let mut worst: Option<usize> = None;
        picks.retain(|p| match is_media(p).then(|| rules::unmet(&p.codec, &req)).flatten() {
            Some(name) => {
                let at = rules::UNMET_ORDER.iter().position(|n| *n == name).unwrap_or(0);
                worst = Some(worst.map_or(at, |w| w.min(at)));
                false
            }
            None => true,
        });
        let after = picks.iter().filter(|p| is_media(p)).count();
        if before > 0 && after == 0 {
            return Err(NegotiateError::Unsatisfiable {
                kind,
                constraint: rules::UNMET_ORDER[worst.unwrap_or(0)],
                reason: "no common codec can meet it",
            });
        }
        if after == 0 {
            // Helpers alone carry no media: the kind agreed on nothing.
            picks.retain(|p| p.codec.kind != kind);
        }
    }

    // Offer payload type -> answer payload type, per kind, of agreed entries.
    let mut pt_map: BTreeMap<(Kind, u8), u8> =
        picks.iter().map(|p| ((p.codec.kind, p.codec.payload_id.get()), p.answer_pt.get())).collect();

    // Pass 2: RED, bound to the codecs its redundancy list names.
    for (i, x) in offer.codecs.iter().enumerate().filter(|(_, x)| family(x) == Family::Red) {
        let Ok(lx) = red_list(x) else { continue };
        if !pt_map.keys().any(|(k, _)| *k == x.kind) {
            continue;
        }
        if lx.as_ref().is_some_and(|l| l.iter().any(|p| !pt_map.contains_key(&(x.kind, *p)))) {
            continue;
        }
        let back = |q: u8| pt_map.iter().find(|((k, _), a)| *k == x.kind && **a == q).map(|((_, o), _)| *o);
        let fits = |y: &&Codec| {
            if family(y) != Family::Red || y.kind != x.kind || y.hz_rate != x.hz_rate {
                return false;
            }
            if y.channel_count() != x.channel_count() {
                return false;
            }
            match red_list(y) {
                Err(()) => false,
                Ok(None) => true,
                Ok(Some(ly)) => {
                    let translated: Option<Vec<u8>> = ly.iter().map(|q| back(*q)).collect();
                    match (&lx, translated) {
                        (_, None) => false,
                        (Some(lx), Some(t)) => *lx == t,
                        (None, Some(_)) => true,
                    }
                }
            }
        };
        let candidates = answer.codecs.iter().filter(fits);
        if let Some(y) = pick_answer(x, candidates) {
            let list = match (&lx, red_list(y)) {
                (Some(l), _) => Some(l.clone()),
                (None, Ok(Some(ly))) => ly.iter().map(|q| back(*q)).collect(),
                _ => None,
            };
            let mut codec = merged(x, y);
            if let Some(l) = list {
                codec.parameters.insert(red_param(&l), "");
            }
            picks.push(Pick { offer: i, answer_pt: y.payload_id, codec });
        }
    }
    for p in &picks {
        pt_map.insert((p.codec.kind, p.codec.payload_id.get()), p.answer_pt.get());
    }

    // Pass 3: RTX, bound to its `apt` (RFC 4588 section 8.6).
    for (i, x) in offer.codecs.iter().enumerate().filter(|(_, x)| family(x) == Family::Rtx) {
        let Some(apt) = x.parameters.get("apt").and_then(|v| v.trim().parse::<u8>().ok()) else { continue };
        let Some(&q) = pt_map.get(&(x.kind, apt)) else { continue };
        let candidates = answer.codecs.iter().filter(|y| {
            family(y) == Family::Rtx
                && y.kind == x.kind
                && y.hz_rate == x.hz_rate
                && y.parameters.get("apt").and_then(|v| v.trim().parse::<u8>().ok()) == Some(q)
        });
        if let Some(y) = pick_answer(x, candidates) {
            let mut codec = merged(x, y);
            codec.parameters.insert("apt", apt.to_string());
            picks.push(Pick { offer: i, answer_pt: y.payload_id, codec });
        }
    }
    picks.sort_by_key(|p| p.offer);
    let mut codecs: Vec<Codec> = picks.into_iter().map(|p| p.codec).collect();
    resolve_payload_type_conflicts(&mut codecs)?;

    // Header extensions both list for a kind that agreed on codecs; the
    // offerer's ID (RFC 8285 section 7).
    let mut header_extensions: Vec<HeaderExtension> = Vec::new();
    for x in &offer.header_extensions {
        let both = answer.header_extensions.iter().any(|y| y.kind == x.kind && y.uri == x.uri);
        let used = codecs.iter().any(|c| c.kind == x.kind);
        let seen = header_extensions.iter().any(|h| h.kind == x.kind && h.uri == x.uri);
        if both && used && !seen {
            header_extensions.push(x.clone());
        }
    }
    resolve_extension_id_conflicts(&mut header_extensions)?;
    Ok(Agreement { codecs, header_extensions, required, optional })
}

/// In the one RTP session of a BUNDLE group (RFC 8843 section 9.1) the ID in
/// a packet's header extension (RFC 8285 section 4) must name one URI
/// whichever `m=` section the packet belongs to. An extension whose ID an
/// earlier one (offerer's order) uses for another URI takes the ID that URI
/// already has in another kind, else the lowest free one-byte ID (1-14), else
/// a free two-byte ID (16-255).
fn resolve_extension_id_conflicts(exts: &mut [HeaderExtension]) -> Result<(), NegotiateError> {
    let used: BTreeSet<u8> = exts.iter().map(|e| e.id).collect();
    let mut owner: BTreeMap<u8, String> = BTreeMap::new();
    for e in exts.iter_mut() {
        match owner.get(&e.id) {
            None => {
                owner.insert(e.id, e.uri.clone());
            }
            Some(uri) if *uri == e.uri => {}
            Some(_) => {
                let same_uri = owner.iter().find(|(_, u)| **u == e.uri).map(|(id, _)| *id);
                let free = || (1..=14u8).chain(16..=255).find(|v| !used.contains(v) && !owner.contains_key(v));
                e.id = same_uri.or_else(free).ok_or(NegotiateError::ExtensionIdsExhausted)?;
                owner.insert(e.id, e.uri.clone());
            }
        }
    }
    Ok(())
}

/// Moves codecs whose payload type an earlier codec of another kind already
/// uses, and rewrites the `apt` and RED lists that named them.
fn resolve_payload_type_conflicts(codecs: &mut [Codec]) -> Result<(), NegotiateError> {
    let used: BTreeSet<u8> = codecs.iter().map(|c| c.payload_id.get()).collect();
    let mut taken = BTreeSet::new();
    let mut moved: BTreeMap<(Kind, u8), u8> = BTreeMap::new();
    for c in codecs.iter_mut() {
        let pt = c.payload_id.get();
        if taken.insert(pt) {
            continue;
        }
        let free = (96..=127u8)
            .chain(35..=63)
            .find(|v| !used.contains(v) && !taken.contains(v))
            .ok_or(NegotiateError::PayloadTypesExhausted)?;
        taken.insert(free);
        moved.insert((c.kind, pt), free);
        c.payload_id = PayloadType::new(free).ok_or(NegotiateError::PayloadTypesExhausted)?;
    }
    if moved.is_empty() {
        return Ok(());
    }
    for c in codecs.iter_mut() {
        match family(c) {
            Family::Rtx => {
                if let Some(new) =
                    c.parameters.get("apt").and_then(|v| v.parse().ok()).and_then(|a| moved.get(&(c.kind, a)))
                {
                    c.parameters.insert("apt", new.to_string());
                }
            }
            Family::Red => {
                if let Ok(Some(list)) = red_list(c) {
                    let new: Vec<u8> = list.iter().map(|p| *moved.get(&(c.kind, *p)).unwrap_or(p)).collect();
                    c.parameters.remove(&red_param(&list));
                    c.parameters.insert(red_param(&new), "");
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn min_opt(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Combines both sides' limits per kind and dimension. Required bounds all
/// hold at once: the smallest maximum and the largest minimum, an error when
/// they cross. Optional bounds are best effort: the smallest optional maximum
/// is kept when it lies within the required range and tightens it, then the
/// largest optional minimum when it lies within what remains; otherwise
/// they are dropped. Both steps are symmetric in the two sides.
fn resolve_constraints(offer: &Options, answer: &Options) -> Result<(Constraints, Constraints), NegotiateError> {
    let mut required = Constraints::default();
    let mut optional = Constraints::default();
    for kind in Kind::ALL {
        let (ro, ra) = (offer.required.get(kind), answer.required.get(kind));
        let (oo, oa) = (offer.optional.get(kind), answer.optional.get(kind));
        let mut req = MediaConstraints::default();
        let mut opt = MediaConstraints::default();
        for d in Dimension::ALL {
            let rmax = min_opt(ro.max(d), ra.max(d));
            let rmin = max_opt(ro.min(d), ra.min(d));
            if let (Some(lo), Some(hi)) = (rmin, rmax)
                && lo > hi
            {
                return Err(NegotiateError::Unsatisfiable {
                    kind,
                    constraint: d.min_name(),
                    reason: "above the required maximum of the other side",
                });
            }
            let omax = min_opt(oo.max(d), oa.max(d))
                .filter(|v| rmin.is_none_or(|lo| *v >= lo) && rmax.is_none_or(|hi| *v < hi));
            let emax = omax.or(rmax);
            let omin = max_opt(oo.min(d), oa.min(d))
                .filter(|v| emax.is_none_or(|hi| *v <= hi) && rmin.is_none_or(|lo| *v > lo));
            req.set_max(d, rmax);
            req.set_min(d, rmin);
            opt.set_max(d, omax);
            opt.set_min(d, omin);
        }
        required.set(kind, req);
        optional.set(kind, opt);
    }
    Ok((required, optional))
}
