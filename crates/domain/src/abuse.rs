//! Abuse resistance: who may make us send a code, and how often.
//!
//! An OTP service is attacked from its first day: guessing codes by asking
//! for many of them, SMS pumping (making us text premium or far-away numbers
//! that pay the attacker), and flooding. The [`SendGuard`] stands before
//! every send and every check:
//! - per phone number: a burst limit (5 sends per 10 minutes) and a resend
//!   cooldown (30 s, except where a surface's clients resend at once);
//! - per client IP: sends and checks per 10 minutes, an IPv6 address
//!   counting by its /64, and more per IPv6 /48 (one site's network);
//! - per deployment: the countries and prefixes we send to at all, no text
//!   to a number libphonenumber says is not a mobile, and hourly SMS budgets,
//!   global and per destination country, after which sends are refused and
//!   an alert is raised. Part of each budget is kept for numbers that have
//!   verified before, so a flood of sends to new numbers cannot lock
//!   returning users out.
//!
//! The counts live behind the [`RateLimiter`] port, so several instances
//! share them through Redis. Every decision is one all-or-nothing batch: a
//! send refused by any limit spends nothing of the others (no budget unit,
//! no per-phone key). Phone numbers and emails appear in the limiter's keys
//! only as keyed hashes.

use std::{
    collections::HashMap,
    fmt,
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use self::batch::{Batch, Kind, ipv6_48_key, reserved_share};
use crate::{
    account::Email,
    otp::{Channel, Purpose, SecretHasher},
    phone::{LineKind, PhoneInputError, PhoneNumber, PhonePolicy},
    ports::{StoreError, VerifiedPhones},
    rate_limit::{BatchDecision, RateLimiter, RateRule},
    time::Timestamp,
};

mod batch;
pub mod sign_in;

/// Who is asking, as far as the service can tell: the client's IP address,
/// from the socket or from a trusted proxy's header. `None` only when the
/// request did not come over a socket (in-process tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Client {
    ip: Option<IpAddr>,
}

impl Client {
    pub const fn new(ip: Option<IpAddr>) -> Self {
        Self { ip }
    }

    pub const fn ip(&self) -> Option<IpAddr> {
        self.ip
    }
}

/// Why a send (or a check) was refused before anything was done.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// A per-phone or per-IP limit is reached.
    #[error("too many requests; retry after {} s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// The deployment's SMS budget for this hour is spent.
    #[error("the SMS budget is exhausted; retry after {} s", retry_after.as_secs())]
    BudgetExhausted { retry_after: Duration },
    /// Codes sent to this number's prefix are not being verified (see
    /// [`pumping`]): sends to it are held to a trickle.
    #[error("sends to this prefix are held (low conversion); retry after {} s", retry_after.as_secs())]
    LowConversion { retry_after: Duration },
    /// The deployment does not send to this country or prefix.
    #[error("this deployment does not send codes to this number's country or prefix")]
    DestinationNotAllowed,
    /// libphonenumber says the number cannot receive texts (a landline,
    /// premium-rate, toll-free or unknown number).
    #[error("the number is not a mobile number")]
    NotMobile,
    /// The counts could not be read, and the guard fails closed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Refusal {
    /// When the client may try again, for `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after }
            | Self::BudgetExhausted { retry_after }
            | Self::LowConversion { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// The limits, all configurable.
#[derive(Debug, Clone)]
pub struct AbuseSettings {
    /// Sends per phone number (default 5 per 10 minutes).
    pub sends_per_phone: RateRule,
    /// Sends per phone number over a longer window (default 20 per day), so
    /// that guessing by asking for code after code stays slow over days.
    pub sends_per_phone_daily: RateRule,
    /// The least time between two sends to one number, per surface; a
    /// surface that is absent (or zero) has none.
    pub resend_cooldown: HashMap<Purpose, Duration>,
    /// Sends per client IP (default 20 per 10 minutes).
    pub sends_per_ip: RateRule,
    /// Code checks per client IP (default 60 per 10 minutes).
    pub checks_per_ip: RateRule,
    /// Sends per IPv6 /48, all its /64s together (`None`: no such limit).
    /// A /48 is one site's network: without it, one site could send from
    /// 65,536 /64s, each with the per-IP allowance.
    pub sends_per_ipv6_48: Option<RateRule>,
    /// Code checks per IPv6 /48 (`None`: no such limit).
    pub checks_per_ipv6_48: Option<RateRule>,
    /// Where codes may be sent at all (allowed regions and prefixes; empty
    /// lists allow everything).
    pub destinations: PhonePolicy,
    /// Refuse texts to numbers that libphonenumber does not call a mobile.
    pub require_mobile_for_sms: bool,
    /// Sends per hour, all destinations together (`None`: no budget).
    pub hourly_budget: Option<u32>,
    /// Sends per hour to one country calling code, unless listed in
    /// `country_budgets` (`None`: no budget).
    pub country_hourly_budget: Option<u32>,
    /// Per calling code (digits, e.g. `44`) hourly budgets.
    pub country_budgets: HashMap<String, u32>,
    /// The share of each hourly budget, in percent (rounded down), that only
    /// numbers that have verified before may spend; new numbers may spend
    /// the rest. Needs [`SendGuard::with_verified_phones`].
    pub returning_reserve_percent: u8,
    /// Whether to allow sends when the counts cannot be read (Redis down).
    /// Off by default: an outage of the limiter must not open the door to
    /// pumping.
    pub fail_open: bool,
}

/// Counts of refusals since start, for metrics and alerts.
#[derive(Debug, Default)]
pub struct AbuseCounters {
    pub rate_limited: AtomicU64,
    pub budget_exhausted: AtomicU64,
    pub destination_refused: AtomicU64,
    pub not_mobile: AtomicU64,
    /// When the last budget alert was logged (unix ms), so an exhausted
    /// budget raises one alert a minute, not one per request.
    last_budget_alert: AtomicI64,
}

/// What a send is about.
#[derive(Debug, Clone, Copy)]
pub struct SendAttempt<'a> {
    pub purpose: Purpose,
    pub phone: &'a PhoneNumber,
    pub channel: Channel,
    pub client: &'a Client,
}

/// Stands before every send and check.
#[derive(Clone)]
pub struct SendGuard {
    limiter: Arc<dyn RateLimiter>,
    settings: Arc<AbuseSettings>,
    counters: Arc<AbuseCounters>,
    /// Keys the hashes that stand for phone numbers and emails in limiter
    /// keys, so neither Redis nor a memory dump holds them in clear.
    keys: SecretHasher,
    /// Who has verified before; without it no budget is reserved.
    verified: Option<Arc<dyn VerifiedPhones>>,
}

impl fmt::Debug for SendGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendGuard")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

const HOUR: Duration = Duration::from_secs(3600);

impl SendGuard {
    /// A guard counting through `limiter`, with phone numbers and emails in
    /// its keys hashed under `keys` (a key derived from the master secret,
    /// the same on every instance that shares the limiter).
    pub fn new(limiter: Arc<dyn RateLimiter>, settings: AbuseSettings, keys: SecretHasher) -> Self {
        Self {
            limiter,
            settings: Arc::new(settings),
            counters: Arc::default(),
            keys,
            verified: None,
        }
    }

    /// The same guard, keeping `returning_reserve_percent` of each hourly
    /// budget for the numbers `verified` knows.
    pub fn with_verified_phones(self, verified: Arc<dyn VerifiedPhones>) -> Self {
        Self {
            verified: Some(verified),
            ..self
        }
    }

    pub fn counters(&self) -> &Arc<AbuseCounters> {
        &self.counters
    }

    /// A phone number as it appears in limiter keys: a keyed hash (128 bits
    /// in hex), the same on every instance, that reveals nothing of the
    /// number without the server secret.
    fn phone_key(&self, phone: &PhoneNumber) -> String {
        self.hashed_key("phonegate rate-limit phone", phone.as_str())
    }

    fn hashed_key(&self, kind: &str, text: &str) -> String {
        hashed_key(&self.keys, kind, text)
    }

    /// Records one event for every key of `batch`, or none, failing open or
    /// closed on a limiter outage.
    async fn run(&self, batch: &Batch, now: Timestamp) -> Result<BatchDecision, Refusal> {
        match self.limiter.acquire_all(&batch.keys, now).await {
            Ok(decision) => Ok(decision),
            Err(error) if self.settings.fail_open => {
                tracing::error!(error = %error.report(), "rate limiter unavailable; allowing the request (rate_limit.fail_open)");
                Ok(BatchDecision::Allowed)
            }
            Err(error) => Err(Refusal::Store(error)),
        }
    }

    /// Runs `batch` and turns a refusal into the client's answer, counting
    /// it (and raising the budget alert at most once a minute).
    /// A refusal by a new numbers' share is not decided here: it comes back
    /// as its index in the batch and its `retry_after`.
    async fn admit(&self, batch: &Batch, now: Timestamp) -> Result<Option<(usize, Duration)>, Refusal> {
        let (index, retry_after) = match self.run(batch, now).await? {
            BatchDecision::Allowed => return Ok(None),
            BatchDecision::Limited { index, retry_after } => (index, retry_after),
        };
        match &batch.kinds[index] {
            Kind::Limit(what) => {
                self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    limit = *what,
                    retry_after_s = retry_after.as_secs(),
                    "rate limit reached"
                );
                Err(Refusal::RateLimited { retry_after })
            }
            Kind::Budget { scope, limit } => Err(self.budget_spent(scope, *limit, now, retry_after)),
            // The caller decides: a number that has verified before may go on.
            Kind::NewShare { .. } => Ok(Some((index, retry_after))),
        }
    }

    fn budget_spent(&self, scope: &str, limit: u32, now: Timestamp, retry_after: Duration) -> Refusal {
        self.counters.budget_exhausted.fetch_add(1, Ordering::Relaxed);
        let last = self.counters.last_budget_alert.load(Ordering::Relaxed);
        if now.unix_millis().saturating_sub(last) >= 60_000
            && self
                .counters
                .last_budget_alert
                .compare_exchange(last, now.unix_millis(), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(
                alert = "sms_budget_exhausted",
                scope,
                limit,
                "the hourly SMS budget is spent: sends are refused (possible SMS pumping)"
            );
        }
        Refusal::BudgetExhausted { retry_after }
    }

    /// The refusal of a send to a new number once new numbers have spent
    /// their share of the budget at `index`.
    fn new_share_spent(&self, batch: &Batch, index: usize, now: Timestamp, retry_after: Duration) -> Refusal {
        let (scope, limit) = match &batch.kinds[index] {
            Kind::NewShare { scope, limit } | Kind::Budget { scope, limit } => (scope.as_str(), *limit),
            Kind::Limit(what) => (*what, 0),
        };
        self.budget_spent(&format!("{scope}, new numbers"), limit, now, retry_after)
    }

    /// The per-client limits of an action: per IP (an IPv6 address counts
    /// by its /64) and per IPv6 /48.
    fn client_limits(
        &self,
        batch: &mut Batch,
        client: &Client,
        action: &str,
        per_ip: RateRule,
        per_48: Option<RateRule>,
    ) {
        let Some(ip) = client.ip() else {
            return;
        };
        batch.limit(format!("{action}:ip:{}", ip_key(ip)), per_ip, "per IP");
        if let (Some(rule), Some(site)) = (per_48, ipv6_48_key(ip)) {
            batch.limit(format!("{action}:ip48:{site}"), rule, "per IPv6 /48");
        }
    }

    /// Decides whether a code may be sent, and counts it if so. The
    /// destination rules come first (no I/O); then every count, per client,
    /// per phone number and the budgets, is decided in one all-or-nothing
    /// batch: a send refused by any limit spends nothing of the others and
    /// creates no per-phone key.
    pub async fn admit_send(&self, attempt: SendAttempt<'_>, now: Timestamp) -> Result<(), Refusal> {
        let settings = &self.settings;
        let kind = match settings.destinations.parse_with_kind(attempt.phone.as_str()) {
            Ok((_, kind)) => Some(kind),
            Err(PhoneInputError::NotAllowed) => {
                self.counters.destination_refused.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::DestinationNotAllowed);
            }
            // libphonenumber does not know the number (its own rules may be
            // stricter than a surface's, e.g. pin-auth's configured prefixes).
            Err(PhoneInputError::Invalid | PhoneInputError::Blank) => None,
        };
        // Texts need a mobile; calls may also go to a landline, never to a
        // premium-rate, shared-cost, toll-free or unknown number (the
        // classic pumping targets).
        let reachable = match attempt.channel {
            // WhatsApp accounts belong to mobiles, and its fallback is a text.
            Channel::Sms | Channel::WhatsApp => matches!(kind, Some(LineKind::Mobile | LineKind::FixedLineOrMobile)),
            Channel::Call => matches!(
                kind,
                Some(LineKind::Mobile | LineKind::FixedLineOrMobile | LineKind::FixedLine)
            ),
        };
        if settings.require_mobile_for_sms && !reachable {
            self.counters.not_mobile.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::NotMobile);
        }

        let mut batch = Batch::default();
        self.client_limits(
            &mut batch,
            attempt.client,
            "send",
            settings.sends_per_ip,
            settings.sends_per_ipv6_48,
        );
        let phone = self.phone_key(attempt.phone);
        if let Some(cooldown) = settings
            .resend_cooldown
            .get(&attempt.purpose)
            .filter(|cooldown| !cooldown.is_zero())
        {
            let key = format!("send:cooldown:{}:{phone}", attempt.purpose.as_str());
            batch.limit(key, RateRule::new(1, *cooldown), "resend cooldown");
        }
        batch.limit(
            format!("send:phone:{phone}"),
            settings.sends_per_phone,
            "sends per phone",
        );
        batch.limit(
            format!("send:phone-daily:{phone}"),
            settings.sends_per_phone_daily,
            "sends per phone per day",
        );
        let calling_code = calling_code(attempt.phone);
        let country_limit = settings
            .country_budgets
            .get(calling_code)
            .copied()
            .or(settings.country_hourly_budget);
        let budgets = [
            settings
                .hourly_budget
                .map(|limit| ("budget:all".to_owned(), limit, "all")),
            country_limit.map(|limit| (format!("budget:cc:{calling_code}"), limit, calling_code)),
        ];
        for (key, limit, scope) in budgets.iter().flatten() {
            batch.budget(key.clone(), *limit, scope);
        }
        // New numbers spend only the budgets' unreserved part: each budget
        // has a second count, of sends while that part was not yet spent.
        if self.verified.is_some() {
            for (key, limit, scope) in budgets.iter().flatten() {
                let reserved = reserved_share(*limit, settings.returning_reserve_percent);
                if reserved > 0 {
                    batch.new_share(format!("{key}:new"), limit - reserved, scope);
                }
            }
        }
        let Some((index, retry_after)) = self.admit(&batch, now).await? else {
            return Ok(());
        };
        // Every limit but the new numbers' share allows the send. Whether
        // the number has verified before is asked only now, for known and
        // unknown numbers alike (so pin-auth's decoys take the same path).
        let verified = self.verified.as_ref().map(Arc::clone);
        let returning = match verified {
            Some(verified) => verified.has_verified(attempt.phone).await?,
            None => false,
        };
        if !returning {
            return Err(self.new_share_spent(&batch, index, now, retry_after));
        }
        batch.without_new_shares();
        match self.admit(&batch, now).await? {
            None => Ok(()),
            // Not reached: the batch holds no new numbers' share any more.
            Some((index, retry_after)) => Err(self.new_share_spent(&batch, index, now, retry_after)),
        }
    }

    /// Decides whether an email (a password reset) may be sent to `to`: the
    /// per-IP send limits and, per address, the per-phone limit's numbers.
    pub async fn admit_mail(&self, to: &Email, client: &Client, now: Timestamp) -> Result<(), Refusal> {
        let settings = &self.settings;
        let mut batch = Batch::default();
        self.client_limits(
            &mut batch,
            client,
            "send",
            settings.sends_per_ip,
            settings.sends_per_ipv6_48,
        );
        let address = self.hashed_key("phonegate rate-limit email", &to.as_str().to_ascii_lowercase());
        batch.limit(
            format!("send:email:{address}"),
            settings.sends_per_phone,
            "sends per email",
        );
        self.admit(&batch, now).await.map(drop)
    }

    /// Decides whether a client may check a code now.
    pub async fn admit_check(&self, client: &Client, now: Timestamp) -> Result<(), Refusal> {
        let settings = &self.settings;
        let mut batch = Batch::default();
        self.client_limits(
            &mut batch,
            client,
            "check",
            settings.checks_per_ip,
            settings.checks_per_ipv6_48,
        );
        if batch.keys.is_empty() {
            return Ok(());
        }
        self.admit(&batch, now).await.map(drop)
    }
}

/// `text` (a phone number, an email) as it appears in limiter keys: a keyed
/// hash (128 bits in hex) under `keys`, the same on every instance, that
/// reveals nothing of the text without the server secret.
pub(crate) fn hashed_key(keys: &SecretHasher, kind: &str, text: &str) -> String {
    let hash = keys.token_hash(kind, text.as_bytes());
    hash.as_bytes()[..16].iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The key of a client address: an IPv4 address, or an IPv6 address's /64
/// (one subscriber gets a whole /64, so counting single IPv6 addresses
/// would give each attacker 2^64 fresh budgets).
fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The country calling code of an E.164 number (`44` for `+447…`), by the
/// ITU's prefix-free assignment: 1, 7 and the 2-digit codes are listed; the
/// rest are 3 digits.
pub fn calling_code(phone: &PhoneNumber) -> &str {
    calling_code_of(phone.as_str().trim_start_matches('+'))
}

/// The calling code that `digits` (an E.164 number or prefix, no `+`)
/// starts with; all of `digits` when they are shorter than one.
pub fn calling_code_of(digits: &str) -> &str {
    const TWO_DIGIT: &[&str] = &[
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48", "49",
        "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66", "81", "82", "84",
        "86", "90", "91", "92", "93", "94", "95", "98",
    ];
    let len = if digits.starts_with('1') || digits.starts_with('7') {
        1
    } else if TWO_DIGIT.iter().any(|code| digits.starts_with(code)) {
        2
    } else {
        3
    };
    &digits[..len.min(digits.len())]
}

pub mod phone_lockout;
pub mod pumping;

#[cfg(test)]
mod tests;
