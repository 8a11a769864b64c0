//! Explicit typing of phonegate's JWTs (RFC 8725 §3.11, RFC 9068): every
//! kind of token names its kind in the header's `typ`, and a token is
//! refused where another kind is expected by its `typ` as well as by its
//! `aud`, so that a verifier which checks only one of them still tells an
//! access token from a phone-verify session token.
//!
//! Tokens issued before explicit typing (and before the HS256 key was
//! separated from the master secret) carry the generic `typ: JWT`. They are
//! accepted for one token lifetime after the upgrade, as [`LegacyTokens`]
//! describes, and refused after that.

use phonegate_domain::time::Timestamp;

use super::keys::VerifyingKey;

/// The `typ` of access tokens (pin-auth's `jwt_token`): RFC 9068's.
pub(super) const ACCESS_TYP: &str = "at+jwt";
/// The `typ` of phone-verify session tokens. It is phonegate's own: no
/// standard names this kind of token.
pub(super) const PHONE_SESSION_TYP: &str = "pv-session+jwt";
/// The generic `typ` that tokens carried before explicit typing.
const LEGACY_TYP: &str = "JWT";

/// Tokens of the versions before explicit typing, accepted for one token
/// lifetime after the upgrade so that nobody is signed out by it.
///
/// A legacy token is one whose `typ` is the generic `JWT` (or missing). It
/// is accepted only before `until`; its `aud` is checked as every token's
/// is. With HS256 it may have been signed with the raw master secret, which
/// signed HS256 tokens before it was separated from the HS256 key: `master`
/// then verifies legacy tokens naming its `kid` (the current key's), and
/// nothing else. It never signs.
#[derive(Clone)]
pub struct LegacyTokens {
    /// When legacy tokens stop being accepted: one token lifetime after the
    /// first start of the upgraded version.
    pub until: Timestamp,
    /// The raw master secret as a verify-only HS256 key, under the kid its
    /// tokens carry.
    pub master: Option<VerifyingKey>,
}

impl std::fmt::Debug for LegacyTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyTokens")
            .field("until", &self.until)
            .field("master", &self.master)
            .finish()
    }
}

/// What a token's `typ` says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Typ {
    /// The kind expected here.
    Expected,
    /// A token from before explicit typing.
    Legacy,
    /// Another kind of token, or something unknown.
    Wrong,
}

/// Classifies a header's `typ` against the `expected` one. As RFC 7515
/// §4.1.9 allows, the comparison ignores case and an `application/` prefix.
pub(super) fn classify(typ: Option<&str>, expected: &str) -> Typ {
    let Some(typ) = typ else {
        return Typ::Legacy;
    };
    let bare = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    if bare.eq_ignore_ascii_case(expected) {
        Typ::Expected
    } else if bare.eq_ignore_ascii_case(LEGACY_TYP) {
        Typ::Legacy
    } else {
        Typ::Wrong
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_is_compared_without_case_or_application_prefix() {
        for typ in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+Jwt"] {
            assert_eq!(classify(Some(typ), ACCESS_TYP), Typ::Expected, "{typ}");
        }
        for typ in ["JWT", "jwt", "application/jwt"] {
            assert_eq!(classify(Some(typ), ACCESS_TYP), Typ::Legacy, "{typ}");
        }
        assert_eq!(classify(None, ACCESS_TYP), Typ::Legacy);
        for typ in [PHONE_SESSION_TYP, "", "at+jwt ", "application/", "JOSE", "é"] {
            assert_eq!(classify(Some(typ), ACCESS_TYP), Typ::Wrong, "{typ}");
        }
    }
}
