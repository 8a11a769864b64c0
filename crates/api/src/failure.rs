//! The failures every surface answers alike, and the middleware that logs
//! them.
//!
//! A handler's error converts the domain's errors once: the causes that
//! every surface shares (a refused token, a limit, an unavailable
//! dependency, a bug) become a [`Failure`], and each surface renders a
//! `Failure` in its own shape (`{"errors": …}`, DRF's `{"detail": …}`, the
//! `res_info` envelope, `{"error": …}`) through [`Failure::finish`].
//!
//! Architecture invariant: rendering has no side effects. `finish` attaches
//! a [`FailureReport`] to the response, and [`log_failures`], a middleware
//! inside the request span (so the line carries the request id), logs it:
//! 5xx with the source chain at error level, refused tokens at info level
//! with the check that failed. Clients never see a source.

use std::{error::Error, fmt, sync::Arc, time::Duration};

use axum::{extract::Request, http::StatusCode, middleware::Next, response::Response};
use phonegate_domain::{
    StoreError,
    abuse::Refusal,
    ports::{DeliveryError, ErrorChain},
};

/// A boxed error with its source chain, for the log line only.
pub(crate) type Source = Box<dyn Error + Send + Sync + 'static>;

/// A failure that every surface answers with the same status and its own
/// body.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A bearer, session or application token was missing or refused
    /// (401). `reason` names the check that failed, for the log.
    Unauthorized { reason: &'static str },
    /// A rate limit, the SMS budget or the provider said wait (429 with
    /// `Retry-After` when the wait is known).
    TooManyRequests { retry_after: Option<Duration> },
    /// The number is one this deployment or its provider does not send to:
    /// each surface answers it with its own "invalid number" (4xx).
    UndeliverableNumber,
    /// A dependency (database, rate limiter, provider, password hashing)
    /// failed or is saturated (503, with `Retry-After` when known).
    Unavailable {
        source: Source,
        retry_after: Option<Duration>,
    },
    /// A state that should not happen (500).
    Internal(Source),
}

impl Failure {
    /// A dependency failed; no wait is known.
    pub(crate) fn unavailable(source: impl Into<Source>) -> Self {
        Self::Unavailable {
            source: source.into(),
            retry_after: None,
        }
    }

    pub(crate) fn internal(source: impl Into<Source>) -> Self {
        Self::Internal(source.into())
    }

    /// The status every surface answers this failure with. A surface may
    /// pick its own 4xx for [`Failure::UndeliverableNumber`]; this is the
    /// common one (422).
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::UndeliverableNumber => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Completes a surface's rendering of this failure: adds `Retry-After`
    /// where a wait is known and attaches the report that [`log_failures`]
    /// logs.
    pub(crate) fn finish(self, response: Response) -> Response {
        let (retry_after, report) = match self {
            Self::Unauthorized { reason } => (None, Some(FailureReport::Refused { reason })),
            Self::TooManyRequests { retry_after } => (retry_after, None),
            Self::UndeliverableNumber => (None, None),
            Self::Unavailable { source, retry_after } => (retry_after, Some(FailureReport::Source(source.into()))),
            Self::Internal(source) => (None, Some(FailureReport::Source(source.into()))),
        };
        let mut response = crate::with_retry_after(response, retry_after);
        if let Some(report) = report {
            response.extensions_mut().insert(report);
        }
        response
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::unavailable(error)
    }
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::RateLimited { retry_after }
            | Refusal::BudgetExhausted { retry_after }
            | Refusal::LowConversion { retry_after } => Self::TooManyRequests {
                retry_after: Some(retry_after),
            },
            Refusal::DestinationNotAllowed | Refusal::NotMobile => Self::UndeliverableNumber,
            Refusal::Store(error) => error.into(),
        }
    }
}

impl From<DeliveryError> for Failure {
    fn from(error: DeliveryError) -> Self {
        match error {
            // Only a send can find a number without WhatsApp, and sends
            // happen in the outbox, not during a request; like an invalid
            // number, it is the number's.
            DeliveryError::InvalidNumber | DeliveryError::NotOnChannel => Self::UndeliverableNumber,
            DeliveryError::RateLimited { retry_after } => Self::TooManyRequests { retry_after },
            error @ (DeliveryError::Unavailable(_) | DeliveryError::Misconfigured(_) | DeliveryError::Rejected(_)) => {
                Self::unavailable(error)
            }
        }
    }
}

/// What a failed response carries for [`log_failures`]; never serialised.
#[derive(Clone)]
pub(crate) enum FailureReport {
    /// The error behind a 5xx.
    Source(Arc<dyn Error + Send + Sync + 'static>),
    /// A refused token, with the check that refused it.
    Refused { reason: &'static str },
}

impl fmt::Debug for FailureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Source(source) => f.debug_tuple("Source").field(&ErrorChain(source.as_ref())).finish(),
            Self::Refused { reason } => f.debug_struct("Refused").field("reason", reason).finish(),
        }
    }
}

/// Logs what a failed response carries, inside the request's span so that
/// the line has its request id: a 5xx with its source chain (or without
/// one, when a layer such as the load shedder answered), a refused token
/// with the check that refused it.
pub(crate) async fn log_failures(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    match response.extensions().get::<FailureReport>() {
        Some(FailureReport::Source(source)) if status == StatusCode::SERVICE_UNAVAILABLE => {
            tracing::error!(status = status.as_u16(), error = %ErrorChain(source.as_ref()), "dependency unavailable");
        }
        Some(FailureReport::Source(source)) => {
            tracing::error!(status = status.as_u16(), error = %ErrorChain(source.as_ref()), "internal error");
        }
        Some(FailureReport::Refused { reason }) => tracing::info!(reason, "request unauthorized"),
        None if status.is_server_error() => {
            tracing::error!(status = status.as_u16(), "request failed without an error report");
        }
        None => {}
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner;

    #[test]
    fn chain_prints_every_source() {
        let error = Outer(Inner);
        assert_eq!(ErrorChain(&error).to_string(), "outer: inner");
    }

    #[test]
    fn finish_adds_retry_after_and_a_report_without_touching_the_body() {
        let failure = Failure::Unavailable {
            source: Box::new(Outer(Inner)),
            retry_after: Some(Duration::from_millis(1500)),
        };
        let response = failure.finish((StatusCode::SERVICE_UNAVAILABLE, "down").into_response());
        assert_eq!(response.headers()["retry-after"], "2");
        assert!(matches!(
            response.extensions().get::<FailureReport>(),
            Some(FailureReport::Source(_))
        ));
    }

    #[test]
    fn refusals_map_to_their_common_failure() {
        let limited = Failure::from(Refusal::RateLimited {
            retry_after: Duration::from_secs(3),
        });
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            Failure::from(Refusal::NotMobile).status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let down = Failure::from(Refusal::Store(StoreError::new("acquire", "limiter down")));
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
