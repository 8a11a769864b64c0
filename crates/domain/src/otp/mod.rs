//! One-time codes and the challenges that carry them.
//!
//! Every surface sends codes through the same [`OtpEngine`]: a challenge is
//! stored with a keyed hash of its code and of its lookup key (never the code
//! or key themselves), a new challenge for the same purpose and phone
//! supersedes the old one, each check spends one of a bounded number of
//! attempts *before* the code is compared, and a correct code is consumed by
//! a conditional write, so that of two concurrent checks exactly one wins.
//!
//! The module is split by what each part is: [`code`] holds the values
//! (codes, policies, purposes, channels, challenge ids), [`secret`] the
//! keyed hashing that tokens use too, [`test_numbers`] the configured test
//! numbers, and the engine the use of all of them. Every item is
//! re-exported here, so `crate::otp::OtpCode` keeps naming the same type.

pub mod code;
mod engine;
pub mod secret;
pub mod test_numbers;

pub use self::{
    code::{ChallengeId, Channel, CodeLength, OtpCode, OtpPolicy, Purpose},
    engine::{CheckError, IssueError, IssueRequest, IssuedCode, OtpEngine, VerifiedChallenge},
    secret::{LookupKey, SecretHash, SecretHasher},
    test_numbers::TestNumbers,
};
pub use crate::ports::challenges::{AttemptOutcome, ChallengeAttempt, NewChallenge};
