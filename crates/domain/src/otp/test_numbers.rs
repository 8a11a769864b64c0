//! Configured test numbers, which receive nothing and accept a fixed code.

use std::sync::atomic::{AtomicU64, Ordering};

use super::code::{CodeLength, OtpCode};
use crate::phone::PhoneNumber;

/// Configured test numbers: they never receive anything and accept a fixed
/// code. Exact numbers serve app-store review accounts; prefixes serve load
/// tests (every number starting `+1415` accepts `123456`). A fixed code is
/// cut or repeated to each surface's code length (`123456` is `1234` for a
/// 4-digit surface).
#[derive(Debug, Default)]
pub struct TestNumbers {
    exact: Vec<(PhoneNumber, String)>,
    prefixes: Vec<(String, String)>,
    pub(super) uses: AtomicU64,
}

impl TestNumbers {
    /// `exact` numbers and `prefixes`, each with its fixed code (digits).
    pub fn new(exact: Vec<(PhoneNumber, String)>, prefixes: Vec<(String, String)>) -> Result<Self, String> {
        let codes = exact
            .iter()
            .map(|(_, code)| code)
            .chain(prefixes.iter().map(|(_, code)| code));
        for code in codes {
            if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err("a test number's code must be digits".to_owned());
            }
        }
        Ok(Self {
            exact,
            prefixes,
            uses: AtomicU64::new(0),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    /// Whether `phone` is a test number.
    pub fn contains(&self, phone: &PhoneNumber) -> bool {
        self.code_for(phone, CodeLength(4)).is_some()
    }

    /// How many codes were issued to test numbers since start.
    pub fn uses(&self) -> u64 {
        self.uses.load(Ordering::Relaxed)
    }

    /// The fixed code of `phone` at `length`, if it is a test number.
    pub(super) fn code_for(&self, phone: &PhoneNumber, length: CodeLength) -> Option<OtpCode> {
        let fixed = self
            .exact
            .iter()
            .find(|(number, _)| number == phone)
            .map(|(_, code)| code)
            .or_else(|| {
                self.prefixes
                    .iter()
                    .find(|(prefix, _)| phone.as_str().starts_with(prefix.as_str()))
                    .map(|(_, code)| code)
            })?;
        Some(OtpCode(fixed.chars().cycle().take(length.get()).collect()))
    }
}
