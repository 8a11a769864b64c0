//! Routes: which providers, in which order, deliver to which numbers.
//!
//! A route maps an E.164 prefix (`+44`, `+1415`) to an ordered list of
//! providers; the longest prefix that a number starts with wins, and a
//! number no prefix matches takes the default route. The dispatcher tries
//! a route's providers in order and moves to the next one at once when a
//! provider fails in a way another provider may not (an outage, a
//! throttle, its own wrong settings).

use std::{fmt, sync::Arc};

use crate::phone::PhoneNumber;

/// One provider of a route: its configured name (for logs, metrics, the
/// outbox and the circuit breaker) and its client, already bound to the
/// route's sender.
pub struct Hop<T: ?Sized> {
    pub provider: &'static str,
    pub client: Arc<T>,
}

impl<T: ?Sized> Clone for Hop<T> {
    fn clone(&self) -> Self {
        Self {
            provider: self.provider,
            client: Arc::clone(&self.client),
        }
    }
}

impl<T: ?Sized> fmt::Debug for Hop<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.provider)
    }
}

/// A route's destination: numbers starting with `prefix` (`+` and digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePrefix(String);

impl RoutePrefix {
    /// `+` and 1 to 15 digits.
    pub fn parse(text: &str) -> Result<Self, String> {
        let digits = text
            .strip_prefix('+')
            .ok_or_else(|| format!("the route prefix {text:?} does not start with +"))?;
        if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("the route prefix {text:?} is not + and 1 to 15 digits"));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Every route of one kind of message (texts, or calls), with the default.
pub struct Routes<T: ?Sized> {
    /// Longest prefix first, so the first match is the longest.
    by_prefix: Vec<(RoutePrefix, Vec<Hop<T>>)>,
    default: Vec<Hop<T>>,
}

impl<T: ?Sized> Clone for Routes<T> {
    fn clone(&self) -> Self {
        Self {
            by_prefix: self.by_prefix.clone(),
            default: self.default.clone(),
        }
    }
}

impl<T: ?Sized> fmt::Debug for Routes<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (prefix, hops) in &self.by_prefix {
            map.entry(&prefix.as_str(), hops);
        }
        map.entry(&"default", &self.default).finish()
    }
}

impl<T: ?Sized> Routes<T> {
    /// Every number goes to `provider`: the route of a deployment that
    /// names one provider (`sms.provider = "twilio"`).
    pub fn single(provider: &'static str, client: Arc<T>) -> Self {
        Self::new(Vec::new(), vec![Hop { provider, client }])
    }

    /// Routes by prefix, and the default route. A prefix given twice keeps
    /// its first route (settings refuse duplicates before this).
    pub fn new(mut by_prefix: Vec<(RoutePrefix, Vec<Hop<T>>)>, default: Vec<Hop<T>>) -> Self {
        // A stable sort: among equal lengths the configured order stays.
        by_prefix.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.as_str().len()));
        Self { by_prefix, default }
    }

    /// The providers for `phone`, in the order to try them: those of the
    /// longest prefix it starts with, or the default route's.
    pub fn for_number(&self, phone: &PhoneNumber) -> &[Hop<T>] {
        self.by_prefix
            .iter()
            .find(|(prefix, _)| phone.as_str().starts_with(prefix.as_str()))
            .map_or(self.default.as_slice(), |(_, hops)| hops.as_slice())
    }

    /// Whether any route has a provider at all.
    pub fn is_empty(&self) -> bool {
        self.default.is_empty() && self.by_prefix.iter().all(|(_, hops)| hops.is_empty())
    }

    /// Each route as `(prefix or "default", provider names)`, for
    /// `phonegate config check`.
    pub fn describe(&self) -> Vec<(String, Vec<&'static str>)> {
        let names = |hops: &[Hop<T>]| hops.iter().map(|hop| hop.provider).collect();
        self.by_prefix
            .iter()
            .map(|(prefix, hops)| (prefix.as_str().to_owned(), names(hops)))
            .chain(std::iter::once(("default".to_owned(), names(&self.default))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn hop(provider: &'static str) -> Hop<()> {
        Hop {
            provider,
            client: Arc::new(()),
        }
    }

    fn names(hops: &[Hop<()>]) -> Vec<&'static str> {
        hops.iter().map(|hop| hop.provider).collect()
    }

    #[test]
    fn the_longest_matching_prefix_wins_and_the_rest_take_the_default() {
        let routes = Routes::new(
            vec![
                (RoutePrefix::parse("+44").unwrap(), vec![hop("vonage"), hop("twilio")]),
                (RoutePrefix::parse("+447").unwrap(), vec![hop("plivo")]),
            ],
            vec![hop("twilio")],
        );
        let number = |text| PhoneNumber::parse_e164(text).unwrap();
        assert_eq!(names(routes.for_number(&number("+447700900123"))), ["plivo"]);
        assert_eq!(names(routes.for_number(&number("+442079460000"))), ["vonage", "twilio"]);
        assert_eq!(names(routes.for_number(&number("+14155550100"))), ["twilio"]);
        assert_eq!(
            routes.describe(),
            vec![
                ("+447".to_owned(), vec!["plivo"]),
                ("+44".to_owned(), vec!["vonage", "twilio"]),
                ("default".to_owned(), vec!["twilio"]),
            ]
        );
    }

    #[test]
    fn prefixes_are_plus_and_digits() {
        assert!(RoutePrefix::parse("+44").is_ok());
        for bad in ["44", "+", "+4a", "+1234567890123456"] {
            assert!(RoutePrefix::parse(bad).is_err(), "{bad}");
        }
    }
}
