//! Abuse resistance: who may make us send a code, and how often.
//!
//! An OTP service is attacked from its first day: guessing codes by asking
//! for many of them, SMS pumping (making us text premium or far-away numbers
//! that pay the attacker), and flooding. The [`SendGuard`] stands before
//! every send and every check:
//! - per phone number: a burst limit (5 sends per 10 minutes) and a resend
//!   cooldown (30 s, except where a surface's clients resend at once);
//! - per client IP: sends and checks per 10 minutes;
//! - per deployment: the countries and prefixes we send to at all, no text
//!   to a number libphonenumber says is not a mobile, and hourly SMS budgets,
//!   global and per destination country, after which sends are refused and
//!   an alert is raised.
//!
//! The counts live behind the [`RateLimiter`] port, so several instances
//! share them through Redis.

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

use crate::{
    account::Email,
    otp::{Channel, Purpose},
    phone::{LineKind, PhoneInputError, PhoneNumber, PhonePolicy},
    ports::StoreError,
    rate_limit::{RateDecision, RateLimiter, RateRule},
    time::Timestamp,
};

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
            Self::RateLimited { retry_after } | Self::BudgetExhausted { retry_after } => Some(*retry_after),
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
    pub fn new(limiter: Arc<dyn RateLimiter>, settings: AbuseSettings) -> Self {
        Self {
            limiter,
            settings: Arc::new(settings),
            counters: Arc::default(),
        }
    }

    pub fn counters(&self) -> &Arc<AbuseCounters> {
        &self.counters
    }

    /// One event against `key`, failing open or closed on a limiter outage.
    async fn acquire(&self, key: &str, rule: RateRule, now: Timestamp) -> Result<RateDecision, Refusal> {
        match self.limiter.acquire(key, rule, now).await {
            Ok(decision) => Ok(decision),
            Err(error) if self.settings.fail_open => {
                tracing::error!(%error, "rate limiter unavailable; allowing the request (rate_limit.fail_open)");
                Ok(RateDecision::Allowed)
            }
            Err(error) => Err(Refusal::Store(error)),
        }
    }

    async fn limit(&self, key: &str, rule: RateRule, now: Timestamp, what: &'static str) -> Result<(), Refusal> {
        match self.acquire(key, rule, now).await? {
            RateDecision::Allowed => Ok(()),
            RateDecision::Limited { retry_after } => {
                self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    limit = what,
                    retry_after_s = retry_after.as_secs(),
                    "rate limit reached"
                );
                Err(Refusal::RateLimited { retry_after })
            }
        }
    }

    async fn budget(&self, key: &str, limit: u32, now: Timestamp, scope: &str) -> Result<(), Refusal> {
        match self.acquire(key, RateRule::new(limit, HOUR), now).await? {
            RateDecision::Allowed => Ok(()),
            RateDecision::Limited { retry_after } => {
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
                Err(Refusal::BudgetExhausted { retry_after })
            }
        }
    }

    /// Codes and reset emails share one per-IP send limit.
    async fn limit_sends_per_ip(&self, client: &Client, now: Timestamp) -> Result<(), Refusal> {
        match client.ip() {
            Some(ip) => {
                let key = format!("send:ip:{}", ip_key(ip));
                self.limit(&key, self.settings.sends_per_ip, now, "sends per IP").await
            }
            None => Ok(()),
        }
    }

    /// Decides whether a code may be sent. Cheap checks first; each limit
    /// that allows the send counts it.
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
            Channel::Sms => matches!(kind, Some(LineKind::Mobile | LineKind::FixedLineOrMobile)),
            Channel::Call => matches!(
                kind,
                Some(LineKind::Mobile | LineKind::FixedLineOrMobile | LineKind::FixedLine)
            ),
        };
        if settings.require_mobile_for_sms && !reachable {
            self.counters.not_mobile.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::NotMobile);
        }
        self.limit_sends_per_ip(attempt.client, now).await?;
        let phone = attempt.phone.as_str();
        if let Some(cooldown) = settings
            .resend_cooldown
            .get(&attempt.purpose)
            .filter(|cooldown| !cooldown.is_zero())
        {
            let key = format!("send:cooldown:{}:{phone}", attempt.purpose.as_str());
            self.limit(&key, RateRule::new(1, *cooldown), now, "resend cooldown")
                .await?;
        }
        self.limit(
            &format!("send:phone:{phone}"),
            settings.sends_per_phone,
            now,
            "sends per phone",
        )
        .await?;
        self.limit(
            &format!("send:phone-daily:{phone}"),
            settings.sends_per_phone_daily,
            now,
            "sends per phone per day",
        )
        .await?;
        if let Some(limit) = settings.hourly_budget {
            self.budget("budget:all", limit, now, "all").await?;
        }
        let calling_code = calling_code(attempt.phone);
        let country_limit = settings
            .country_budgets
            .get(calling_code)
            .copied()
            .or(settings.country_hourly_budget);
        if let Some(limit) = country_limit {
            self.budget(&format!("budget:cc:{calling_code}"), limit, now, calling_code)
                .await?;
        }
        Ok(())
    }

    /// Decides whether an email (a password reset) may be sent to `to`: the
    /// per-IP send limit and, per address, the per-phone limit's numbers.
    pub async fn admit_mail(&self, to: &Email, client: &Client, now: Timestamp) -> Result<(), Refusal> {
        self.limit_sends_per_ip(client, now).await?;
        let key = format!("send:email:{}", to.as_str().to_ascii_lowercase());
        self.limit(&key, self.settings.sends_per_phone, now, "sends per email")
            .await
    }

    /// Decides whether a client may check a code now.
    pub async fn admit_check(&self, client: &Client, now: Timestamp) -> Result<(), Refusal> {
        match client.ip() {
            Some(ip) => {
                self.limit(
                    &format!("check:ip:{}", ip_key(ip)),
                    self.settings.checks_per_ip,
                    now,
                    "checks per IP",
                )
                .await
            }
            None => Ok(()),
        }
    }
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
    let digits = phone.as_str().trim_start_matches('+');
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

#[cfg(test)]
mod tests;
