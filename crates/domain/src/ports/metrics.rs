//! Counters for `/metrics`.

/// Counts what the use cases, the dispatcher and the provider clients do,
/// for `/metrics`. Every label is a fixed name chosen by the caller (a
/// purpose, a channel, an outcome, a provider's numeric error code), never
/// user input or a secret, so the number of series stays bounded. Calls are
/// cheap, synchronous and cannot fail.
pub trait Metrics: Send + Sync + std::fmt::Debug {
    /// One delivery attempt of an outbox message ended. `purpose` is the
    /// message's (`pin_auth`, `password_reset`, …), `kind` its envelope's
    /// ([`super::outbox::Envelope::kind`]) and `outcome` the
    /// [`super::outbox::DeliveryOutcome::state`]-like `sent`, `retry`,
    /// `failed` or `dropped`; `provider` the one tried last (`None` for
    /// mail, and when none was tried).
    fn delivery(
        &self,
        purpose: &'static str,
        kind: &'static str,
        provider: Option<&'static str>,
        outcome: &'static str,
    );

    /// A code check ended: `outcome` is `verified`, `wrong_code`,
    /// `not_found`, `expired`, `exhausted`, `closed`, `refused`, `locked`
    /// (the number is locked out: the code was not compared) or `error`.
    fn code_check(&self, purpose: &'static str, outcome: &'static str);

    /// A call to a provider (`operation` is `send_sms`, `call`,
    /// `verify_start`, `verify_check` or `send_mail`) took `elapsed` and
    /// ended with `outcome`: `ok` or a [`super::DeliveryError::kind`].
    fn provider_call(
        &self,
        provider: &'static str,
        operation: &'static str,
        elapsed: std::time::Duration,
        outcome: &'static str,
    );

    /// A provider answered an error with its own code (Twilio's `21211`,
    /// `20003`, …, or `none` when its answer had none).
    fn provider_error_code(&self, provider: &'static str, operation: &'static str, code: &str);

    /// A phone number was locked out of code checks and sends after too
    /// many wrong codes; `purpose` is the surface of the check that locked
    /// it. Components that do not report it need not implement it.
    fn phone_locked(&self, purpose: &'static str) {
        let _ = purpose;
    }

    /// `from` failed a message in a way another provider may not, and the
    /// route moved it to `to` at once.
    fn failover(&self, from: &'static str, to: &'static str) {
        let _ = (from, to);
    }

    /// A message could not reach its number on channel `from` (the number
    /// is not a WhatsApp user) and the same code was sent by `to` (`sms`)
    /// instead.
    fn channel_fallback(&self, from: &'static str, to: &'static str) {
        let _ = (from, to);
    }

    /// `provider`'s circuit for `channel` (`sms`, `call`, `hosted`) opened
    /// (`open`) or closed again.
    fn provider_circuit(&self, provider: &'static str, channel: &'static str, open: bool) {
        let _ = (provider, channel, open);
    }

    /// A provider accepted a code (a text, call or hosted start) for a
    /// number with `calling_code` (digits, `44`): the conversion's sends.
    fn code_sent(&self, provider: &'static str, calling_code: &str) {
        let _ = (provider, calling_code);
    }

    /// A provider's receipt says a code it accepted reached the number.
    fn code_delivered(&self, provider: &'static str, calling_code: &str) {
        let _ = (provider, calling_code);
    }

    /// A receipt said a message sent through `from` did not arrive, and it
    /// was sent again through `to`, another provider of its route.
    fn undelivered_resend(&self, from: &str, to: &'static str) {
        let _ = (from, to);
    }

    /// A delivery receipt reached `provider`'s endpoint and ended with
    /// `outcome`: `recorded`, `resent`, `unknown` (no message has its id),
    /// `bad_signature` or `malformed`.
    fn receipt(&self, provider: &'static str, outcome: &'static str) {
        let _ = (provider, outcome);
    }

    /// A code sent through `provider` to a number with `calling_code` was
    /// verified (`provider` is `none` when no provider was recorded).
    fn code_verified(&self, provider: &str, calling_code: &str) {
        let _ = (provider, calling_code);
    }

    /// The pumping guard held a send to `prefix` (digits, a calling code or
    /// a configured guard prefix, so the series stay bounded).
    fn pumping_held(&self, prefix: &str) {
        let _ = prefix;
    }

    /// The pumping guard of this instance found `prefix`'s conversion too
    /// low (`tripped`) or healthy again.
    fn pumping_tripped(&self, prefix: &str, tripped: bool) {
        let _ = (prefix, tripped);
    }
}

/// Metrics that go nowhere: the default of every component that counts, so
/// unit tests and tools need not wire a registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn delivery(&self, _: &'static str, _: &'static str, _: Option<&'static str>, _: &'static str) {}

    fn code_check(&self, _: &'static str, _: &'static str) {}

    fn provider_call(&self, _: &'static str, _: &'static str, _: std::time::Duration, _: &'static str) {}

    fn provider_error_code(&self, _: &'static str, _: &'static str, _: &str) {}
}
