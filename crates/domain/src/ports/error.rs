//! The error every store port shares.

/// A store could not do what was asked because it is unreachable or failed.
/// The message is for logs and never contains a secret; clients only ever
/// see a generic 5xx.
#[derive(Debug, thiserror::Error)]
#[error("store unavailable: {0}")]
pub struct StoreError(pub String);
