//! The limits one decision of the send guard counts, in the order they are
//! reported, and what a refusal by each means.

use std::net::IpAddr;

use super::HOUR;
use crate::rate_limit::{RateKey, RateRule};

/// What a key of a batch stands for, so a refusal can be answered.
#[derive(Debug, Clone)]
pub(super) enum Kind {
    /// A per-client or per-phone limit (named for the log).
    Limit(&'static str),
    /// An hourly SMS budget (`scope`: `all` or a calling code).
    Budget { scope: String, limit: u32 },
    /// The part of an hourly budget that new numbers may spend.
    NewShare { scope: String, limit: u32 },
}

/// The keys of one all-or-nothing decision, each with its kind.
#[derive(Debug, Default)]
pub(super) struct Batch {
    pub(super) keys: Vec<RateKey>,
    pub(super) kinds: Vec<Kind>,
}

impl Batch {
    pub(super) fn limit(&mut self, key: String, rule: RateRule, what: &'static str) {
        self.keys.push(RateKey::new(key, rule));
        self.kinds.push(Kind::Limit(what));
    }

    pub(super) fn budget(&mut self, key: String, limit: u32, scope: &str) {
        self.keys.push(RateKey::new(key, RateRule::new(limit, HOUR)));
        self.kinds.push(Kind::Budget {
            scope: scope.to_owned(),
            limit,
        });
    }

    pub(super) fn new_share(&mut self, key: String, limit: u32, scope: &str) {
        self.keys.push(RateKey::new(key, RateRule::new(limit, HOUR)));
        self.kinds.push(Kind::NewShare {
            scope: scope.to_owned(),
            limit,
        });
    }

    /// Drops the new numbers' shares: a number that has verified before
    /// spends only the budgets themselves (and so their reserved part).
    pub(super) fn without_new_shares(&mut self) {
        let mut kept = self.kinds.iter().map(|kind| !matches!(kind, Kind::NewShare { .. }));
        self.keys.retain(|_| kept.next().unwrap_or(true));
        self.kinds.retain(|kind| !matches!(kind, Kind::NewShare { .. }));
    }
}

/// The reserved part of an hourly budget of `limit` at `percent`, rounded
/// down (so a budget under 5 sends has no reserve at 20 %), and never the
/// whole budget unless `percent` is 100.
pub(super) fn reserved_share(limit: u32, percent: u8) -> u32 {
    let reserved = u64::from(limit) * u64::from(percent.min(100)) / 100;
    // At most `limit`, so the conversion cannot fail.
    u32::try_from(reserved).unwrap_or(limit)
}

/// The /48 of an IPv6 client (not an IPv4-mapped one), as `a:b:c::/48`.
pub(super) fn ipv6_48_key(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
        }
        _ => None,
    }
}
