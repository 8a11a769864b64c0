//! The validated inputs of the phone-verify use cases, each built by a
//! parsing function at the edge.

use std::fmt;

use crate::otp::{CodeLength, OtpCode};

/// A session token as `register` hands them out: a compact JWS, three
/// base64url segments. Checking the signature and the claims is
/// [`crate::ports::TokenIssuer::verify_phone_session`]'s job; this type only
/// says that the text could be one. `Debug` hides it: with the code it
/// passes the challenge.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

/// Why a text cannot be a session token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionTokenError {
    #[error("no session token was given")]
    Blank,
    #[error("the session token is not three base64url segments")]
    Malformed,
}

impl SessionToken {
    /// Accepts `header.payload.signature`, each segment non-empty base64url
    /// without padding. White space is not trimmed: no token this service
    /// signs has any, so a token with it cannot verify either.
    pub fn parse(input: &str) -> Result<Self, SessionTokenError> {
        if input.trim().is_empty() {
            return Err(SessionTokenError::Blank);
        }
        let segments: Vec<&str> = input.split('.').collect();
        let base64url = |segment: &&str| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if segments.len() != 3 || !segments.iter().all(base64url) {
            return Err(SessionTokenError::Malformed);
        }
        Ok(Self(input.to_owned()))
    }

    /// The token text, for the token verifier and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken([redacted])")
    }
}

/// The security code as the client sent it.
///
/// A code of the wrong shape is not refused at the edge: `verify` judges
/// the session token first, so an expired session is answered as expired
/// whatever code came with it, and the use case decides what a malformed
/// code costs. So the parse result is passed in as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmittedCode {
    /// Exactly the configured number of digits (white space around it
    /// ignored).
    WellFormed(OtpCode),
    /// Anything else; it can never match.
    Malformed,
}

impl SubmittedCode {
    /// Reads `input` as a code of `length` digits.
    pub fn parse(input: &str, length: CodeLength) -> Self {
        OtpCode::parse(input, length).map_or(Self::Malformed, Self::WellFormed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_tokens_are_three_base64url_segments() {
        assert!(SessionToken::parse("eyJh.eyJw.c2ln-_").is_ok());
        assert_eq!(SessionToken::parse("  ").unwrap_err(), SessionTokenError::Blank);
        for malformed in [
            "forged", "a.b", "a.b.c.d", "a..c", "a.b.c=", " a.b.c", "a.b.c\n", "a.b.c/",
        ] {
            assert_eq!(
                SessionToken::parse(malformed).unwrap_err(),
                SessionTokenError::Malformed,
                "{malformed:?}"
            );
        }
        assert_eq!(
            format!("{:?}", SessionToken::parse("a.b.c").unwrap()),
            "SessionToken([redacted])"
        );
    }

    #[test]
    fn codes_of_another_shape_are_malformed() {
        let six = CodeLength::new(6).unwrap();
        assert!(matches!(
            SubmittedCode::parse(" 123456 ", six),
            SubmittedCode::WellFormed(_)
        ));
        for malformed in ["12345", "1234567", "12345a", ""] {
            assert_eq!(SubmittedCode::parse(malformed, six), SubmittedCode::Malformed);
        }
    }
}
