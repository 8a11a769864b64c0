//! The error every store port shares, and how any error is printed with
//! its sources.

use std::{error::Error, fmt};

/// A store could not do what was asked because it is unreachable or failed.
///
/// It names the operation that failed (`find_by_phone`, `acquire`, …) and
/// keeps the error that caused it as its [`Error::source`], so a log line
/// can print the whole chain. Neither ever holds a secret: adapters pass
/// only errors whose text names statements, constraints or categories,
/// never bound values, keys or credentials. Clients only ever see a
/// generic 5xx.
pub struct StoreError {
    op: &'static str,
    source: Box<dyn Error + Send + Sync>,
}

impl StoreError {
    /// The operation `op` failed because of `source`: a library error, or a
    /// message (`&str` or `String`) saying what went wrong.
    pub fn new(op: &'static str, source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self {
            op,
            source: source.into(),
        }
    }

    /// The operation that failed, for logs and metrics.
    pub const fn op(&self) -> &'static str {
        self.op
    }

    /// The error with its whole source chain (`store operation acquire
    /// failed: connection refused`), for a log line or a message that has
    /// no other way to show the cause.
    pub fn report(&self) -> ErrorChain<'_> {
        ErrorChain(self)
    }
}

/// An error and its sources, `outer: inner: innermost`: how a log line
/// shows an error whose own text names only the outermost cause.
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store operation {} failed", self.op)
    }
}

/// Shows the source's text rather than its `Debug` form, which for some
/// libraries' errors prints more than their text does.
impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreError")
            .field("op", &self.op)
            .field("source", &format_args!("{}", self.source))
            .finish()
    }
}

impl Error for StoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

/// Turns a store library's result into a [`StoreError`] naming the
/// operation, written once per adapter error type instead of at every call.
pub trait StoreResult<T> {
    /// The result, with its error (if any) as the failure of `op`.
    fn op(self, op: &'static str) -> Result<T, StoreError>;
}

impl<T, E> StoreResult<T> for Result<T, E>
where
    E: Into<Box<dyn Error + Send + Sync>>,
{
    fn op(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|error| StoreError::new(op, error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_operation_and_keeps_the_source() {
        let error = StoreError::new("find_by_phone", "connection refused");
        assert_eq!(error.to_string(), "store operation find_by_phone failed");
        assert_eq!(error.op(), "find_by_phone");
        assert_eq!(
            error.source().map(ToString::to_string).as_deref(),
            Some("connection refused")
        );
        assert_eq!(
            error.report().to_string(),
            "store operation find_by_phone failed: connection refused"
        );
    }

    #[test]
    fn a_result_names_its_operation() {
        let result: Result<(), std::io::Error> = Err(std::io::Error::other("disk full"));
        let error = result.op("purge").unwrap_err();
        assert_eq!(error.to_string(), "store operation purge failed");
        assert_eq!(error.source().map(ToString::to_string).as_deref(), Some("disk full"));
    }
}
