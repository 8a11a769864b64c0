//! What the SMS vendors' clients (Plivo, Telnyx) share: the HTTP client, the
//! check of a base URL, one POST without retries, and how a transport error
//! or a vendor's refusal is described, counted and logged.
//!
//! One attempt per call: the dispatcher fails over to the route's next
//! provider at once on a retryable error and otherwise retries with backoff,
//! so retries in here would only delay that failover.

use std::time::Duration;

use phonegate_domain::ports::{DeliveryError, Metrics};

/// The only operation these clients have, for logs and metrics.
pub(crate) const SEND_SMS: &str = "send_sms";

/// A vendor's answer, whatever its status.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// A `Retry-After` header given in seconds, if the answer had one.
    pub(crate) retry_after: Option<Duration>,
    /// The body; one that could not be read is empty, so a 2xx stays a
    /// success and an error keeps its status.
    pub(crate) body: Vec<u8>,
}

/// The HTTP client of one vendor's adapter: `timeout` bounds an attempt
/// from connecting to reading the whole answer, and redirects are errors,
/// since the vendors' APIs do not redirect and following one would send the
/// credentials somewhere unexpected.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("phonegate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| format!("cannot build the HTTP client: {error}"))
}

/// `url` without its trailing slashes, if it is an absolute http(s) URL; the
/// error names `field` and never repeats the URL, which could hold
/// credentials.
pub(crate) fn base_url(field: &str, url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url).map_err(|error| format!("{field}: {error}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.cannot_be_a_base() {
        return Err(format!("{field} must be an absolute http(s) URL"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Sends `request` once. An answer of any status is `Ok`; no answer (a
/// refused or reset connection, a timeout, DNS) is the `Unavailable` error
/// of `provider`, and a request that could not even be built is
/// `Misconfigured`. Both are logged and counted here (code `unavailable` or
/// `misconfigured`).
pub(crate) async fn send_once(
    provider: &'static str,
    metrics: &dyn Metrics,
    request: reqwest::RequestBuilder,
) -> Result<Answer, DeliveryError> {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = retry_after(response.headers());
            let body = response.bytes().await.map(|body| body.to_vec()).unwrap_or_default();
            Ok(Answer {
                status,
                retry_after,
                body,
            })
        }
        Err(error) if error.is_builder() => {
            let why = describe(&error);
            metrics.provider_error_code(provider, SEND_SMS, "misconfigured");
            tracing::error!(provider, operation = SEND_SMS, error = %why, "cannot build the request to the SMS provider");
            Err(DeliveryError::Misconfigured(format!("{provider}: {why}")))
        }
        Err(error) => {
            let why = describe(&error);
            metrics.provider_error_code(provider, SEND_SMS, "unavailable");
            tracing::warn!(provider, operation = SEND_SMS, error = %why, "the SMS provider did not answer");
            Err(DeliveryError::Unavailable(format!("{provider}: {why}")))
        }
    }
}

/// A refusal the vendor answered, counted by `code` (the vendor's error
/// code, or `http_<status>` when it gave none) and logged with what may be
/// logged of it: the status, that code and the vendor's request id, never
/// its free text, which can echo the recipient's number.
pub(crate) fn record_refusal(
    provider: &'static str,
    metrics: &dyn Metrics,
    status: u16,
    code: &str,
    request_id: Option<&str>,
    error: &DeliveryError,
) {
    metrics.provider_error_code(provider, SEND_SMS, code);
    let operation = SEND_SMS;
    let request_id = request_id.unwrap_or("");
    match error {
        DeliveryError::Misconfigured(_) => tracing::error!(
            provider,
            operation,
            http_status = status,
            code,
            request_id,
            "the SMS provider refused our credentials or settings; every request will fail until they are fixed"
        ),
        // These vendors carry texts only, so no channel lacks the number.
        DeliveryError::InvalidNumber | DeliveryError::NotOnChannel => tracing::info!(
            provider,
            operation,
            http_status = status,
            code,
            request_id,
            "the SMS provider rejected the number"
        ),
        DeliveryError::Rejected(_) => tracing::info!(
            provider,
            operation,
            http_status = status,
            code,
            request_id,
            "the SMS provider refused the message for good"
        ),
        DeliveryError::RateLimited { retry_after } => tracing::warn!(
            provider,
            operation,
            http_status = status,
            code,
            request_id,
            retry_after_secs = retry_after.map(|delay| delay.as_secs()),
            "the SMS provider is rate-limiting requests"
        ),
        DeliveryError::Unavailable(_) => tracing::warn!(
            provider,
            operation,
            http_status = status,
            code,
            request_id,
            "the SMS provider answered a server error"
        ),
    }
}

/// A sender this vendor cannot send from, or none at all: logged loudly,
/// since every message of the route fails until the settings change.
pub(crate) fn unusable_sender(provider: &'static str, setting: &str, why: &str) -> DeliveryError {
    tracing::error!(
        provider,
        operation = SEND_SMS,
        setting,
        "the SMS provider is misconfigured: {why}"
    );
    DeliveryError::Misconfigured(format!("{provider}: {setting} {why}"))
}

/// Reads a `Retry-After` header given in seconds. The HTTP-date form is
/// ignored: no vendor here documents it, and a rate limit without a delay
/// is still a rate limit.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A transport error in a few words, with its causes ("connection refused")
/// but without reqwest's own message, which names the URL (and so the
/// Plivo account's auth ID).
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "the request timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_builder() {
        "could not build the request"
    } else if error.is_body() || error.is_decode() {
        "could not read the response"
    } else {
        "the request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_absolute_http_and_lose_their_trailing_slash() {
        assert_eq!(
            base_url("base_url", "https://api.example.com/").as_deref(),
            Ok("https://api.example.com")
        );
        assert_eq!(
            base_url("base_url", "http://127.0.0.1:8080").as_deref(),
            Ok("http://127.0.0.1:8080")
        );
        for bad in ["api.example.com", "ftp://user:s3cr3t@example.com", "mailto:a@b.c", ""] {
            let error = base_url("base_url", bad).unwrap_err();
            assert!(error.starts_with("base_url"), "{error}");
            assert!(!error.contains("s3cr3t"), "{error}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_only() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(
            reqwest::header::RETRY_AFTER,
            reqwest::header::HeaderValue::from_static(" 7 "),
        );
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            reqwest::header::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
