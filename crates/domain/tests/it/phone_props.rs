//! Property tests of phone-number parsing: `PhoneNumber::parse_e164`,
//! `PhonePolicy::parse`/`parse_with_kind` and pin-auth's `MobileRule`.
//!
//! Every phone number a client sends goes through one of these, so they
//! must never panic, whatever the input, and whatever they accept must be a
//! valid E.164 number that parses back to itself.
//!
//! Case counts are small so the whole file runs in a few seconds in CI;
//! `PROPTEST_CASES=10000 cargo test -p phonegate-domain --test it phone_props`
//! runs a longer search. A failure prints its minimal input; it becomes a
//! plain regression test below rather than a persisted seed file.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use phonegate_domain::phone::{MobileError, MobileRule, PhoneInputError, PhoneNumber, PhoneNumberError, PhonePolicy};
use proptest::{prelude::*, test_runner::Config};

/// `default_cases`, or `PROPTEST_CASES` when set (for a longer local run),
/// with no failure files written into the source tree.
fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// E.164 as the domain defines it: `+`, then 8 to 15 ASCII digits, the first not 0.
fn is_e164(text: &str) -> bool {
    text.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
    })
}

/// Strings people and attackers type: any Unicode, phone-ish mixes of digits
/// and punctuation (including non-ASCII digits and white space), and long runs.
fn typed() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[+0-9 ()\\-.]{0,24}",
        "\\+?[0-9]{0,20}",
        "[ \t\n\u{a0}\u{2007}\u{3000}]{0,3}\\+?[0-9\u{660}-\u{669}\u{ff10}-\u{ff19}]{0,16}[ \t\n\u{a0}]{0,3}",
        "(00|011|\\+)?[0-9]{1,3}[ \\-./]?\\(?[0-9]{1,5}\\)?[ \\-./]?[0-9]{1,8}([ ]?(x|ext\\.?|#)[0-9]{1,6})?",
        "[+0-9a-zA-Z;=:*#,]{0,30}",
        "\\+?[0-9]{60,300}",
        "[ ]{0,80}\\+1206372123[0-9][ ]{0,80}",
        ".{60,200}",
    ]
}

/// A few numbering plans that libphonenumber knows well, as (region, country
/// code, trunk prefix, a national significant number pattern whose matches
/// are nearly all valid numbers).
const PLANS: &[(&str, &str, &str, &str)] = &[
    ("US", "1", "", "(206|212|312|415|646)[2-9][0-9]{6}"),
    ("HK", "852", "", "[569][0-9]{7}"),
    ("GB", "44", "0", "7[1-57-9][0-9]{8}"),
    ("FR", "33", "0", "6[0-9]{8}"),
    ("AU", "61", "0", "4[0-9]{8}"),
    ("IN", "91", "0", "9[0-9]{9}"),
    ("SG", "65", "", "[89][0-9]{7}"),
    // Mobile numbers that start with 1 after the country code, which the
    // US national prefix must not touch.
    ("DE", "49", "0", "1(5[12579]|6[023]|7[0-9])[0-9]{8}"),
    ("CN", "86", "", "1[3-9][0-9]{9}"),
    ("JP", "81", "0", "[7-9]0[1-9][0-9]{7}"),
    ("RU", "7", "8", "9[0-9]{9}"),
];

/// A plan, a national significant number from it, and how to lay it out.
fn plan_number() -> impl Strategy<Value = (usize, String)> {
    (0..PLANS.len()).prop_flat_map(|plan| (Just(plan), proptest::string::string_regex(PLANS[plan].3).unwrap()))
}

/// `digits` split into groups at `cuts`, joined by `separator`, the first
/// group in parentheses if asked.
fn layout(digits: &str, cuts: &[usize], separator: &str, parenthesise_first: bool) -> String {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|cut| cut % digits.len())
        .filter(|&cut| cut > 0)
        .collect();
    points.sort_unstable();
    points.dedup();
    let mut groups = vec![];
    let mut start = 0;
    for point in points.into_iter().chain([digits.len()]) {
        groups.push(digits[start..point].to_owned());
        start = point;
    }
    if parenthesise_first && groups.len() > 1 {
        groups[0] = format!("({})", groups[0]);
    }
    groups.join(separator)
}

fn policy(region: &str) -> PhonePolicy {
    PhonePolicy::new(region, &[], vec![]).unwrap()
}

proptest! {
    #![proptest_config(config(256))]

    /// `parse_e164` accepts exactly the E.164 strings, unchanged, and never panics.
    #[test]
    fn parse_e164_accepts_exactly_e164(input in typed()) {
        match PhoneNumber::parse_e164(&input) {
            Ok(phone) => {
                prop_assert!(is_e164(&input), "accepted {input:?}");
                prop_assert_eq!(phone.as_str(), input.as_str());
                prop_assert_eq!(phone.to_string(), input.clone());
                prop_assert_eq!(PhoneNumber::parse_e164(phone.as_str()), Ok(phone.clone()));
            }
            Err(error) => {
                prop_assert!(!is_e164(&input), "refused {input:?}: {error}");
                prop_assert_eq!(error == PhoneNumberError::Blank, input.is_empty());
            }
        }
    }

    /// Whatever a policy accepts is E.164, reads back to itself, and obeys
    /// the policy; over-long input is refused before libphonenumber sees it.
    #[test]
    fn policy_output_is_e164_and_idempotent(
        input in typed(),
        region in prop::sample::select(vec!["US", "HK", "GB", "DE", "IN", "BR", "JP"]),
    ) {
        let policy = policy(region);
        let parsed = policy.parse(&input);
        let with_kind = policy.parse_with_kind(&input);
        prop_assert_eq!(&parsed, &with_kind.as_ref().map(|(phone, _)| phone.clone()).map_err(|error| *error));
        match parsed {
            Ok(phone) => {
                prop_assert!(is_e164(phone.as_str()), "{input:?} gave {phone}");
                prop_assert_eq!(policy.parse(phone.as_str()), Ok(phone.clone()));
                // The canonical form means the same number in every region.
                prop_assert_eq!(self::policy("US").parse(phone.as_str()), Ok(phone.clone()));
                prop_assert_eq!(PhoneNumber::parse_e164(phone.as_str()), Ok(phone.clone()));
                prop_assert!(input.trim().len() <= 64);
            }
            Err(PhoneInputError::Blank) => prop_assert!(input.trim().is_empty()),
            Err(error) => {
                prop_assert_eq!(error, PhoneInputError::Invalid, "no allow-list is set");
                prop_assert!(!input.trim().is_empty());
            }
        }
    }

    /// Surrounding white space never changes the answer.
    #[test]
    fn policy_ignores_surrounding_white_space(input in typed(), before in "[ \t\r\n]{0,3}", after in "[ \t\r\n]{0,3}") {
        let policy = policy("US");
        prop_assert_eq!(policy.parse(&format!("{before}{input}{after}")), policy.parse(&input));
    }

    /// The allow-lists hold for every accepted number.
    #[test]
    fn policy_allow_lists_hold(input in typed(), (plan, national) in plan_number()) {
        let (_, country_code, _, _) = PLANS[plan];
        let only_hk = PhonePolicy::new("US", &["HK".to_owned()], vec![]).unwrap();
        let only_1206 = PhonePolicy::new("US", &[], vec!["+1206".to_owned()]).unwrap();
        for input in [input, format!("+{country_code}{national}")] {
            if let Ok(phone) = only_hk.parse(&input) {
                prop_assert!(phone.as_str().starts_with("+852"), "{input:?} gave {phone}");
            }
            if let Ok(phone) = only_1206.parse(&input) {
                prop_assert!(phone.as_str().starts_with("+1206"), "{input:?} gave {phone}");
            }
            // An allow-list only ever turns an acceptance into NotAllowed.
            let open = policy("US").parse(&input);
            for restricted in [only_hk.parse(&input), only_1206.parse(&input)] {
                match (&open, &restricted) {
                    (Ok(_), Err(error)) => prop_assert_eq!(*error, PhoneInputError::NotAllowed),
                    (open, restricted) => prop_assert_eq!(open, restricted),
                }
            }
        }
    }

    /// A valid number reads the same however it is typed: grouped with
    /// spaces, dashes, dots or parentheses, after `+`, after the `00`
    /// international prefix (in a region that dials `00`), or nationally
    /// with the trunk prefix in its own region.
    #[test]
    fn formatting_variations_read_as_one_number(
        (plan, national) in plan_number(),
        cuts in prop::collection::vec(0usize..16, 0..4),
        separator in prop::sample::select(vec![" ", "-", ".", " - ", ""]),
        parenthesise_first in any::<bool>(),
        padding in "[ ]{0,2}",
    ) {
        let (region, country_code, trunk, _) = PLANS[plan];
        let canonical = format!("+{country_code}{national}");
        let expected = policy(region).parse(&canonical);
        // The pattern makes invalid numbers rare; skip the odd one.
        prop_assume!(expected.is_ok());
        prop_assert_eq!(expected.as_ref().unwrap().as_str(), canonical.as_str());
        let grouped = layout(&national, &cuts, separator, parenthesise_first);
        let variants = [
            (region, format!("+{country_code}{separator}{grouped}")),
            (region, format!("+{country_code} {grouped}")),
            // Germany dials out with 00, whatever the number's own country.
            ("DE", format!("00{country_code} {grouped}")),
            ("DE", format!("00{country_code}{national}")),
            // The US dials out with 011.
            ("US", format!("011 {country_code} {grouped}")),
            (region, format!("{trunk}{grouped}")),
        ];
        for (region, variant) in variants {
            let typed = format!("{padding}{variant}{padding}");
            prop_assert_eq!(&policy(region).parse(&typed), &expected, "{:?} in {}", typed, region);
        }
    }

    /// pin-auth's rule never panics; what it accepts is the trimmed input,
    /// one allowed prefix then exactly the required digits, valid E.164,
    /// and accepted again as it is.
    #[test]
    fn mobile_rule_output_is_exact(input in typed(), tail in "[0-9]{0,9}", prefix in 0usize..3) {
        let rule = MobileRule::hong_kong();
        let near_miss = format!("{}{tail}", ["+8525", "+8526", "+8529"][prefix]);
        for input in [input, near_miss] {
            match rule.parse(&input) {
                Ok(phone) => {
                    let trimmed = input.trim();
                    prop_assert_eq!(phone.as_str(), trimmed);
                    prop_assert!(is_e164(trimmed));
                    prop_assert_eq!(trimmed.len(), "+8525".len() + 7);
                    prop_assert!(["+8525", "+8526", "+8529"].iter().any(|p| trimmed.starts_with(p)));
                    prop_assert_eq!(rule.parse(phone.as_str()), Ok(phone.clone()));
                    prop_assert_eq!(format!("+852{}", rule.local_part(&phone)), phone.as_str());
                }
                Err(MobileError::Blank) => prop_assert!(input.trim().is_empty()),
                Err(error) => {
                    prop_assert!(!error.to_string().is_empty());
                    prop_assert!(!input.trim().is_empty());
                }
            }
        }
    }

    /// Any configured rule, even a nonsensical one, is built and applied
    /// without a panic, and still only accepts valid E.164 numbers made of
    /// one of its prefixes and the required count of digits.
    #[test]
    fn any_mobile_rule_is_safe(
        // Characters that share UTF-8 lead bytes (é, è, ê; ё, ж) make
        // prefixes that agree on bytes but not on characters.
        prefixes in prop::collection::vec(prop_oneof!["\\+[1-9][0-9]{0,4}", "[+1éèêёж]{0,3}", ".{0,4}"], 0..4),
        digits in 0usize..16,
        inputs in prop::collection::vec(typed(), 1..4),
    ) {
        let rule = MobileRule::new(prefixes.clone(), digits);
        prop_assert!(prefixes.iter().all(|prefix| prefix.starts_with(rule.country_prefix())));
        let mut candidates = inputs;
        candidates.extend(prefixes.iter().map(|prefix| format!("{prefix}{}", "7".repeat(digits))));
        for input in candidates {
            if let Ok(phone) = rule.parse(&input) {
                prop_assert!(is_e164(phone.as_str()), "{input:?} gave {phone}");
                prop_assert_eq!(phone.as_str(), input.trim());
                prop_assert_eq!(rule.parse(phone.as_str()), Ok(phone.clone()));
                if !prefixes.is_empty() {
                    prop_assert!(prefixes.iter().any(|prefix| {
                        phone.as_str().strip_prefix(prefix.as_str()).is_some_and(|rest| rest.len() == digits)
                    }), "{phone} against {prefixes:?}");
                }
                let local = rule.local_part(&phone);
                prop_assert!(phone.as_str().ends_with(local));
            }
        }
    }
}
