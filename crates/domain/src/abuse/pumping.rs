//! The pumping guard: sends to a destination prefix whose codes are not
//! being verified are held to a trickle, whichever provider carries them.
//!
//! SMS pumping makes a service text numbers that pay the attacker (premium
//! ranges, or a complicit carrier's). Those codes are never typed back, so
//! a prefix under attack converts near zero, while real users verify most
//! codes they ask for. The guard reads, from the challenges themselves, how
//! many codes each prefix was sent in the last window and how many were
//! verified; once a prefix has at least `min_sends` sends of which fewer
//! than `min_conversion_percent` were verified, it is *tripped*: further
//! sends to it are allowed only `held_per_minute` at a time (counted from
//! the database, so shared by every instance), except to numbers that have
//! verified before. It clears by itself once the unverified sends leave the
//! window.
//!
//! The counts are read from the database, so every instance on the same
//! Postgres (or SQLite) sees them. Each instance keeps its last verdict per
//! prefix for `verdict_ttl`, and reads again earlier once it has itself
//! admitted as many sends as it would take to trip the prefix, so a burst
//! on one instance trips after exactly `min_sends`, and the hot path of a
//! healthy prefix costs no query most of the time.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

use super::{Refusal, calling_code_of};
use crate::{
    phone::PhoneNumber,
    ports::{ConversionRow, ConversionStore, Metrics, NoMetrics, PrefixCounts, StoreError, VerifiedPhones},
    time::Timestamp,
};

/// The window in which held sends are counted: `held_per_minute` per
/// minute, and a held client is told to come back after it.
const HELD_WINDOW: Duration = Duration::from_secs(60);

/// The pumping guard's settings.
#[derive(Debug, Clone)]
pub struct PumpingSettings {
    /// Whether sends are held at all; the sent prefix of each challenge is
    /// recorded either way, for `phonegate stats`.
    pub enabled: bool,
    /// The sends to a prefix in `window` before its conversion is judged.
    pub min_sends: u32,
    /// The share of those sends, in percent, that must be verified.
    pub min_conversion_percent: u8,
    /// How far back sends and verifications are counted.
    pub window: Duration,
    /// Sends allowed per minute to a tripped prefix (all instances).
    pub held_per_minute: u32,
    /// Prefixes (digits, no `+`) judged on their own, longer than a
    /// calling code (a mobile range, a premium range); a number counts
    /// under the longest that it starts with, else under its calling code.
    pub prefixes: Vec<String>,
    /// How long an instance trusts a prefix's verdict before reading the
    /// counts again.
    pub verdict_ttl: Duration,
    /// Whether to allow sends when the counts cannot be read, as
    /// `rate_limit.fail_open` decides for the rate limits.
    pub fail_open: bool,
}

/// What this instance last learnt about one prefix.
#[derive(Debug, Clone, Copy)]
struct Verdict {
    tripped: bool,
    read_at: Timestamp,
    /// Unverified sends that could trip the prefix from the counts read.
    headroom: u64,
    /// Sends this instance admitted since.
    admitted: u64,
}

/// Holds sends to prefixes whose codes are not verified.
#[derive(Clone)]
pub struct PumpingGuard {
    store: Arc<dyn ConversionStore>,
    verified: Option<Arc<dyn VerifiedPhones>>,
    settings: Arc<PumpingSettings>,
    metrics: Arc<dyn Metrics>,
    /// One entry per prefix sent to: calling codes and configured
    /// prefixes, so a few thousand at most.
    verdicts: Arc<Mutex<HashMap<String, Verdict>>>,
}

impl fmt::Debug for PumpingGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PumpingGuard")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl PumpingGuard {
    /// A guard reading counts from `store`. Its prefixes are tried longest
    /// first.
    pub fn new(store: Arc<dyn ConversionStore>, mut settings: PumpingSettings) -> Self {
        settings.prefixes.sort_by_key(|prefix| std::cmp::Reverse(prefix.len()));
        Self {
            store,
            verified: None,
            settings: Arc::new(settings),
            metrics: Arc::new(NoMetrics),
            verdicts: Arc::default(),
        }
    }

    /// The same guard, letting numbers that `verified` knows through.
    pub fn with_verified_phones(self, verified: Arc<dyn VerifiedPhones>) -> Self {
        Self {
            verified: Some(verified),
            ..self
        }
    }

    /// The same guard, counting held sends and trips in `metrics`.
    pub fn with_metrics(self, metrics: Arc<dyn Metrics>) -> Self {
        Self { metrics, ..self }
    }

    pub fn settings(&self) -> &PumpingSettings {
        &self.settings
    }

    /// The prefix a send to `phone` counts under: the longest configured
    /// prefix it starts with, else its calling code.
    pub fn prefix_of(&self, phone: &PhoneNumber) -> String {
        prefix_of(&self.settings.prefixes, phone)
    }

    /// Decides whether a code may be sent to `phone` now.
    pub async fn admit(&self, phone: &PhoneNumber, now: Timestamp) -> Result<(), Refusal> {
        if !self.settings.enabled {
            return Ok(());
        }
        match self.decide(phone, now).await {
            Err(Refusal::Store(error)) if self.settings.fail_open => {
                tracing::error!(error = %error.report(), "the pumping guard cannot read its counts; allowing the send (rate_limit.fail_open)");
                Ok(())
            }
            decision => decision,
        }
    }

    async fn decide(&self, phone: &PhoneNumber, now: Timestamp) -> Result<(), Refusal> {
        let prefix = self.prefix_of(phone);
        if !self.tripped(&prefix, now).await? {
            self.note_admitted(&prefix);
            return Ok(());
        }
        // Asked only now, so a healthy prefix costs no look-up.
        if let Some(verified) = &self.verified
            && verified.has_verified(phone).await?
        {
            return Ok(());
        }
        // Fresh counts: the prefix may have cleared, and the held sends of
        // the last minute are every instance's.
        let counts = self.read(&prefix, now).await?;
        if !self.remember(&prefix, counts, now) || counts.recent < u64::from(self.settings.held_per_minute) {
            return Ok(());
        }
        self.metrics.pumping_held(&prefix);
        tracing::info!(prefix, "send held by the pumping guard (low conversion)");
        Err(Refusal::LowConversion {
            retry_after: HELD_WINDOW,
        })
    }

    /// Whether `prefix` is tripped, from this instance's verdict while it
    /// holds, else from fresh counts.
    async fn tripped(&self, prefix: &str, now: Timestamp) -> Result<bool, StoreError> {
        if let Some(verdict) = self.verdicts.lock().map_err(poisoned)?.get(prefix)
            && now.unix_millis() - verdict.read_at.unix_millis() < millis(self.settings.verdict_ttl)
            && (verdict.tripped || verdict.admitted < verdict.headroom)
        {
            return Ok(verdict.tripped);
        }
        let counts = self.read(prefix, now).await?;
        Ok(self.remember(prefix, counts, now))
    }

    async fn read(&self, prefix: &str, now: Timestamp) -> Result<PrefixCounts, StoreError> {
        let since = Timestamp::from_unix_millis(now.unix_millis() - millis(self.settings.window));
        let recent_since = Timestamp::from_unix_millis(now.unix_millis() - millis(HELD_WINDOW));
        self.store.prefix_counts(prefix, since, recent_since).await
    }

    /// Keeps the verdict of `counts` for `prefix`, raising the alert when
    /// the prefix trips and saying so when it clears; returns whether it is
    /// tripped.
    fn remember(&self, prefix: &str, counts: PrefixCounts, now: Timestamp) -> bool {
        let settings = &self.settings;
        let tripped = trips(settings, counts);
        let verdict = Verdict {
            tripped,
            read_at: now,
            headroom: headroom(settings, counts),
            admitted: 0,
        };
        let Ok(mut verdicts) = self.verdicts.lock() else {
            return tripped;
        };
        let was = verdicts
            .insert(prefix.to_owned(), verdict)
            .is_some_and(|old| old.tripped);
        drop(verdicts);
        if tripped && !was {
            tracing::error!(
                alert = "low_conversion",
                prefix,
                sent = counts.sent,
                verified = counts.verified,
                window_s = settings.window.as_secs(),
                min_sends = settings.min_sends,
                min_conversion_percent = settings.min_conversion_percent,
                held_per_minute = settings.held_per_minute,
                "codes sent to this prefix are not being verified (possible SMS pumping): sends to it are held"
            );
            self.metrics.pumping_tripped(prefix, true);
        } else if was && !tripped {
            tracing::info!(
                prefix,
                sent = counts.sent,
                verified = counts.verified,
                "the pumping guard cleared: sends to this prefix are no longer held"
            );
            self.metrics.pumping_tripped(prefix, false);
        }
        tripped
    }

    fn note_admitted(&self, prefix: &str) {
        if let Ok(mut verdicts) = self.verdicts.lock()
            && let Some(verdict) = verdicts.get_mut(prefix)
        {
            verdict.admitted += 1;
        }
    }
}

/// Whether `counts` trip the guard: enough sends, too few verified.
fn trips(settings: &PumpingSettings, counts: PrefixCounts) -> bool {
    counts.sent >= u64::from(settings.min_sends)
        && counts.verified * 100 < u64::from(settings.min_conversion_percent) * counts.sent
}

/// The fewest further unverified sends that would trip a prefix with
/// `counts` (`u64::MAX` when none would).
fn headroom(settings: &PumpingSettings, counts: PrefixCounts) -> u64 {
    let percent = u64::from(settings.min_conversion_percent);
    if percent == 0 {
        return u64::MAX;
    }
    // Tripped once sent >= min_sends and sent > verified * 100 / percent.
    let enough = u64::from(settings.min_sends).saturating_sub(counts.sent);
    let too_few = (counts.verified * 100 / percent + 1).saturating_sub(counts.sent);
    enough.max(too_few)
}

/// The prefix of `phone` among `prefixes` (longest first), else its
/// calling code.
pub fn prefix_of(prefixes: &[String], phone: &PhoneNumber) -> String {
    let digits = phone.as_str().trim_start_matches('+');
    prefixes
        .iter()
        .find(|prefix| digits.starts_with(prefix.as_str()))
        .map_or_else(|| calling_code_of(digits).to_owned(), Clone::clone)
}

/// `rows` (per sent prefix and provider) merged per calling code and
/// provider, ordered by calling code then provider: what `phonegate stats`
/// prints, since configured prefixes are parts of a calling code.
pub fn by_calling_code(rows: Vec<ConversionRow>) -> Vec<ConversionRow> {
    let mut merged: Vec<ConversionRow> = Vec::new();
    for row in rows {
        let code = calling_code_of(&row.prefix).to_owned();
        match merged
            .iter_mut()
            .find(|seen| seen.prefix == code && seen.provider == row.provider)
        {
            Some(seen) => {
                seen.sent += row.sent;
                seen.delivered += row.delivered;
                seen.verified += row.verified;
            }
            None => merged.push(ConversionRow { prefix: code, ..row }),
        }
    }
    merged.sort_by(|a, b| (&a.prefix, &a.provider).cmp(&(&b.prefix, &b.provider)));
    merged
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::new("pumping_verdict", "the verdict cache's lock was poisoned")
}

#[cfg(test)]
mod tests;
