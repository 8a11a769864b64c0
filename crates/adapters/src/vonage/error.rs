//! Vonage's refusals and how they map onto the domain's [`DeliveryError`].
//!
//! Two kinds of answer: the SMS API answers HTTP 200 even when it refuses a
//! message and puts a status per message in its body (table in "Troubleshooting
//! SMS", <https://developer.vonage.com/en/messaging/sms/guides/troubleshooting-sms>,
//! and <https://developer.vonage.com/en/api-errors/sms>); the Voice API
//! answers an HTTP error with an RFC 7807 problem document
//! (<https://developer.vonage.com/en/api-errors>, and Vonage's API standards,
//! <https://developer.vonage.com/en/api-standards/http-codes/4xx>, for the
//! `invalid_parameters` of validation errors).

use std::time::Duration;

use phonegate_domain::ports::DeliveryError;
use serde::Deserialize;

use super::http::Refusal;

/// The domain's view of an SMS API `messages[].status` other than `"0"`.
///
/// | status | Vonage's meaning | here |
/// |---|---|---|
/// | 1 | Throttled | `RateLimited` |
/// | 10 | Too many existing binds ("back off and retry") | `RateLimited` |
/// | 3 | Invalid parameters, when `error-text` names `to` | `InvalidNumber` |
/// | 7 | Number barred: the number may not receive messages | `InvalidNumber` |
/// | 33 | Number de-activated | `InvalidNumber` |
/// | 4, 8, 9, 11, 14, 15, 32 | Invalid credentials, account barred, no credit, account not enabled for HTTP, invalid signature, invalid sender, signature and secret both given | `Misconfigured` |
/// | 5 | Internal error | `Unavailable` |
/// | 2, 3, 6, 12, 22, 23, 29, others | Missing or invalid parameters, invalid message (unroutable prefix), message too long, invalid network code or callback, non-whitelisted destination (a demo account's allow-list) | `Rejected` |
///
/// 29 is a refusal of this message rather than of the number, which can
/// receive from other accounts (as Twilio's 21408, region not enabled). 6
/// ("for example, an unrecognized number prefix") is left `Rejected`: the
/// documentation does not say the number is the cause. Status 3 covers every
/// parameter; only its `error-text` tells that `to` was the invalid one
/// (such as "Invalid 'to' address": the wording is not documented, so a
/// text that does not name `to` stays `Rejected`). That is the one use made
/// of Vonage's free text, which is never logged or kept.
pub(super) fn sms_status(status: &str, error_text: Option<&str>) -> DeliveryError {
    let code = status_code(status);
    match code.as_str() {
        "1" | "10" => DeliveryError::RateLimited { retry_after: None },
        "3" if error_text.is_some_and(names_to) => DeliveryError::InvalidNumber,
        "7" | "33" => DeliveryError::InvalidNumber,
        "4" | "8" | "9" | "11" | "14" | "15" | "32" => DeliveryError::Misconfigured(format!("vonage {code}")),
        "5" => DeliveryError::Unavailable(format!("vonage {code}")),
        _ => DeliveryError::Rejected(format!("vonage {code}")),
    }
}

/// `status` if it is a plausible status (1 to 4 digits), else `unknown`:
/// the status goes into error texts and metric labels, whatever answered.
pub(super) fn status_code(status: &str) -> String {
    let status = status.trim();
    if (1..=4).contains(&status.len()) && status.bytes().all(|b| b.is_ascii_digit()) {
        status.to_owned()
    } else {
        "unknown".to_owned()
    }
}

/// Whether an SMS `error-text` says the `to` parameter is the invalid one.
fn names_to(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    ["'to'", "\"to\"", "to address", "to number"]
        .iter()
        .any(|needle| text.contains(needle))
}

/// The part of a problem document we read. Every field is optional because
/// proxies in front of Vonage may answer with something else.
#[derive(Debug, Default, Deserialize)]
struct Problem {
    #[serde(rename = "type")]
    kind: Option<String>,
    instance: Option<String>,
    #[serde(default)]
    invalid_parameters: Vec<InvalidParameter>,
}

#[derive(Debug, Deserialize)]
struct InvalidParameter {
    name: Option<String>,
}

impl Problem {
    /// Whether a validation error names the recipient: `to`, `to[0].number`…
    fn names_recipient(&self) -> bool {
        self.invalid_parameters.iter().any(|parameter| {
            parameter
                .name
                .as_deref()
                .is_some_and(|name| name == "to" || name.starts_with("to[") || name.starts_with("to."))
        })
    }

    /// The error code of the `type` URL: its fragment (`…/api-errors#low-balance`)
    /// or last segment, kept only if it is a short identifier.
    fn code(&self) -> Option<String> {
        let kind = self.kind.as_deref()?;
        let code = kind.rsplit(['#', '/']).next()?;
        let plain = code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        (plain && (1..=64).contains(&code.len())).then(|| code.to_owned())
    }
}

/// The refusal for an HTTP answer that is not a success.
///
/// | answer | here |
/// |---|---|
/// | 429 | `RateLimited`, with `Retry-After` |
/// | 401, 402, 403; a problem `low-balance`, `account-suspended` or `unprovisioned` | `Misconfigured` (credentials, credit, product not enabled) |
/// | 404 | `Misconfigured`: the endpoint is fixed, so the base URL is wrong (Vonage also answers 404 for a resource one may not access) |
/// | 400 or 422 whose `invalid_parameters` names `to` | `InvalidNumber` |
/// | other 4xx | `Rejected("vonage http <status>")` |
/// | 5xx | `Unavailable` |
/// | anything else (a redirect: the base URL is wrong) | `Misconfigured` |
pub(super) fn http_refusal(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Refusal {
    let problem = serde_json::from_slice::<Problem>(body).unwrap_or_default();
    let code = problem.code();
    let summary = format!("vonage http {status}");
    let account_problem = matches!(
        code.as_deref(),
        Some("low-balance" | "account-suspended" | "unprovisioned")
    );
    let error = match status {
        429 => DeliveryError::RateLimited { retry_after },
        _ if account_problem => DeliveryError::Misconfigured(summary),
        401..=404 => DeliveryError::Misconfigured(summary),
        400 | 422 if problem.names_recipient() => DeliveryError::InvalidNumber,
        400..=499 => DeliveryError::Rejected(summary),
        500..=599 => DeliveryError::Unavailable(summary),
        _ => DeliveryError::Misconfigured(summary),
    };
    Refusal {
        http_status: status,
        vonage_status: None,
        problem: code,
        instance: problem
            .instance
            .filter(|id| id.len() <= 64 && id.bytes().all(|b| b.is_ascii_graphic())),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(error: &DeliveryError) -> &'static str {
        error.kind()
    }

    #[test]
    fn sms_statuses_map_as_documented() {
        for (status, expected) in [
            ("1", "rate_limited"),
            ("10", "rate_limited"),
            ("2", "rejected"),
            ("3", "rejected"),
            ("6", "rejected"),
            ("12", "rejected"),
            ("22", "rejected"),
            ("29", "rejected"),
            ("99", "rejected"),
            ("7", "invalid_number"),
            ("33", "invalid_number"),
            ("4", "misconfigured"),
            ("8", "misconfigured"),
            ("9", "misconfigured"),
            ("11", "misconfigured"),
            ("14", "misconfigured"),
            ("15", "misconfigured"),
            ("32", "misconfigured"),
            ("5", "unavailable"),
        ] {
            assert_eq!(kind(&sms_status(status, Some("x"))), expected, "status {status}");
        }
        assert!(matches!(
            sms_status("3", Some("Invalid Request :: Invalid 'to' address")),
            DeliveryError::InvalidNumber
        ));
        assert!(
            matches!(sms_status("3", Some("Invalid 'from' address")), DeliveryError::Rejected(ref t) if t == "vonage 3")
        );
        assert!(matches!(sms_status("29", None), DeliveryError::Rejected(ref t) if t == "vonage 29"));
    }

    #[test]
    fn odd_statuses_stay_out_of_texts() {
        assert_eq!(status_code(" 15 "), "15");
        assert_eq!(status_code("+14155550100"), "unknown");
        assert_eq!(status_code(""), "unknown");
        assert!(matches!(sms_status("hello world", None), DeliveryError::Rejected(ref t) if t == "vonage unknown"));
    }

    #[test]
    fn problems_map_by_status_and_type() {
        let problem =
            |kind: &str| format!(r#"{{"type": "https://developer.nexmo.com/api-errors#{kind}", "title": "t"}}"#);
        let refusal = http_refusal(401, None, problem("unauthorized").as_bytes());
        assert_eq!(refusal.problem.as_deref(), Some("unauthorized"));
        assert!(matches!(refusal.error, DeliveryError::Misconfigured(ref t) if t == "vonage http 401"));
        assert_eq!(
            kind(&http_refusal(400, None, problem("low-balance").as_bytes()).error),
            "misconfigured"
        );
        assert_eq!(kind(&http_refusal(404, None, b"").error), "misconfigured");
        assert_eq!(kind(&http_refusal(302, None, b"").error), "misconfigured");
        assert_eq!(kind(&http_refusal(409, None, b"").error), "rejected");
        assert_eq!(kind(&http_refusal(502, None, b"<html>").error), "unavailable");
        let limited = http_refusal(429, Some(Duration::from_secs(3)), b"");
        assert!(matches!(limited.error, DeliveryError::RateLimited { retry_after: Some(d) } if d.as_secs() == 3));
        assert_eq!(limited.metric_code(), "http_429");
    }

    #[test]
    fn only_a_validation_error_naming_to_is_an_invalid_number() {
        let body = |name: &str| {
            format!(r#"{{"title": "Bad Request", "invalid_parameters": [{{"name": "{name}", "reason": "r"}}]}}"#)
        };
        for name in ["to", "to[0].number", "to.number"] {
            assert_eq!(
                kind(&http_refusal(400, None, body(name).as_bytes()).error),
                "invalid_number",
                "{name}"
            );
            assert_eq!(
                kind(&http_refusal(422, None, body(name).as_bytes()).error),
                "invalid_number",
                "{name}"
            );
        }
        for name in ["from.number", "ncco[0].language", "total"] {
            assert_eq!(
                kind(&http_refusal(400, None, body(name).as_bytes()).error),
                "rejected",
                "{name}"
            );
        }
    }

    #[test]
    fn problem_codes_and_trace_ids_are_kept_only_when_plain() {
        let refusal = http_refusal(
            400,
            None,
            br#"{"type": "BAD_REQUEST", "instance": "798b8f199c45014ab7b08bfe9cc1c12c"}"#,
        );
        assert_eq!(refusal.problem.as_deref(), Some("BAD_REQUEST"));
        assert_eq!(refusal.instance.as_deref(), Some("798b8f199c45014ab7b08bfe9cc1c12c"));
        let odd = http_refusal(400, None, br#"{"type": "call +1 415 555 0100", "instance": "a b"}"#);
        assert_eq!((odd.problem, odd.instance), (None, None));
    }
}
