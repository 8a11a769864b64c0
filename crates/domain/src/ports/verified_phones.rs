//! Which phone numbers have been proved with a code.

use async_trait::async_trait;

use super::StoreError;
use crate::phone::PhoneNumber;

/// Which phone numbers have been proved, with a code, by whoever holds
/// them: the send guard keeps part of each SMS budget for them, so a flood
/// of sends to new numbers cannot lock returning users out.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait VerifiedPhones: Send + Sync {
    /// Whether a user holds `phone` and has verified it with a code at least
    /// once (phone-verify's verify, phone-login's check_pin, the tokens
    /// surface's verify_phone, pin-auth's verify). One indexed lookup.
    async fn has_verified(&self, phone: &PhoneNumber) -> Result<bool, StoreError>;
}
