//! Phone numbers and the rules each surface applies to them.

use std::fmt;

/// A phone number in E.164 form: `+`, then 8 to 15 digits, the first not 0.
///
/// Every phone number that enters a use case has been validated into this
/// type once, at the edge; the stores key users by it, so the same person is
/// the same user whichever surface they come through.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

/// Why a string is not an E.164 phone number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("a phone number is required")]
    Blank,
    #[error("a phone number must start with + and the country code")]
    MissingPlus,
    #[error("a phone number may contain only digits after the +")]
    NotDigits,
    #[error("a phone number has 8 to 15 digits after the +, the first not 0")]
    BadLength,
}

impl PhoneNumber {
    /// Validates an E.164 string exactly (no spaces, no punctuation).
    pub fn parse_e164(input: &str) -> Result<Self, PhoneNumberError> {
        if input.is_empty() {
            return Err(PhoneNumberError::Blank);
        }
        let Some(digits) = input.strip_prefix('+') else {
            return Err(PhoneNumberError::MissingPlus);
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneNumberError::NotDigits);
        }
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(PhoneNumberError::BadLength);
        }
        Ok(Self(input.to_owned()))
    }

    /// The number in E.164 form, e.g. `+85261234567`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a surface reads numbers people type: any human format
/// (`(206)372-1234`, `206-372-1234`, `+1 206 372 1234`) is normalised to
/// E.164 with libphonenumber's data, national formats being read in the
/// default region. Optionally only some regions or prefixes are accepted.
#[derive(Debug, Clone)]
pub struct PhonePolicy {
    default_region: phonenumber::country::Id,
    allowed_regions: Vec<phonenumber::country::Id>,
    allowed_prefixes: Vec<String>,
}

/// Why a typed number is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneInputError {
    #[error("no phone number was given")]
    Blank,
    #[error("the phone number is not valid")]
    Invalid,
    #[error("phone numbers from this region or prefix are not accepted")]
    NotAllowed,
}

/// What kind of line a number is, as far as libphonenumber can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Mobile,
    /// Numbering plans such as the US one do not distinguish the two.
    FixedLineOrMobile,
    FixedLine,
    Other,
}

impl PhonePolicy {
    /// A policy reading national numbers in `default_region` (ISO 3166
    /// alpha-2, e.g. `US`), accepting only `allowed_regions` and numbers
    /// starting with one of `allowed_prefixes` (each empty = any).
    pub fn new(
        default_region: &str,
        allowed_regions: &[String],
        allowed_prefixes: Vec<String>,
    ) -> Result<Self, String> {
        let region = |code: &str| {
            code.trim()
                .to_ascii_uppercase()
                .parse::<phonenumber::country::Id>()
                .map_err(|_| format!("unknown region code {code:?} (expected ISO 3166 alpha-2, e.g. US)"))
        };
        Ok(Self {
            default_region: region(default_region)?,
            allowed_regions: allowed_regions
                .iter()
                .map(|code| region(code))
                .collect::<Result<_, _>>()?,
            allowed_prefixes,
        })
    }

    /// Normalises `input` to E.164 and applies the allow-lists.
    pub fn parse(&self, input: &str) -> Result<PhoneNumber, PhoneInputError> {
        self.parse_with_kind(input).map(|(phone, _)| phone)
    }

    /// Like [`PhonePolicy::parse`], also saying what kind of line it is.
    pub fn parse_with_kind(&self, input: &str) -> Result<(PhoneNumber, LineKind), PhoneInputError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(PhoneInputError::Blank);
        }
        // Bound the work done on hostile input before libphonenumber sees it.
        if input.len() > 64 {
            return Err(PhoneInputError::Invalid);
        }
        let parsed = self.read(input).ok_or(PhoneInputError::Invalid)?;
        if !parsed.is_valid() {
            return Err(PhoneInputError::Invalid);
        }
        let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
        let phone = PhoneNumber::parse_e164(&e164).map_err(|_| PhoneInputError::Invalid)?;
        if !self.allowed_regions.is_empty()
            && !parsed
                .country()
                .id()
                .is_some_and(|id| self.allowed_regions.contains(&id))
        {
            return Err(PhoneInputError::NotAllowed);
        }
        if !self.allowed_prefixes.is_empty()
            && !self
                .allowed_prefixes
                .iter()
                .any(|prefix| e164.starts_with(prefix.as_str()))
        {
            return Err(PhoneInputError::NotAllowed);
        }
        let kind = match parsed.number_type(&phonenumber::metadata::DATABASE) {
            phonenumber::Type::Mobile => LineKind::Mobile,
            phonenumber::Type::FixedLineOrMobile => LineKind::FixedLineOrMobile,
            phonenumber::Type::FixedLine => LineKind::FixedLine,
            _ => LineKind::Other,
        };
        Ok((phone, kind))
    }

    /// Reads `input` with libphonenumber's data.
    ///
    /// rust-phonenumber strips national prefixes with the *default* region's
    /// rules even from a number written with another country code (its
    /// issue #30): with `US`, `+49 1512 3456789` lost the `1` of its mobile
    /// prefix and became `+495123456789`, another valid German number, and
    /// `+86 131…` a valid Chinese landline. So a number of another country
    /// is also read in its own region, and the reading that keeps every
    /// digit typed wins. (Reading in the number's own region alone is not
    /// enough either: with `RU`'s rules, `+7 800…` loses its `8`.)
    fn read(&self, input: &str) -> Option<phonenumber::PhoneNumber> {
        use phonenumber::{Mode, country::Source, metadata::DATABASE};

        let first = phonenumber::parse(Some(self.default_region), input).ok()?;
        let code = first.code().value();
        let default = DATABASE.by_id(self.default_region.as_ref())?;
        if code == default.country_code() {
            return Some(first);
        }
        // Letters (vanity numbers, extensions) and non-ASCII digits would
        // need libphonenumber's own normalisation; an international number
        // written with them is refused rather than guessed at.
        if input.chars().any(|c| c.is_alphanumeric() && !c.is_ascii_digit()) {
            return None;
        }
        let digits: String = input.chars().filter(char::is_ascii_digit).collect();
        let international = match first.code().source() {
            Source::Plus => format!("+{digits}"),
            // `011 49 …` in the US: the default region's international
            // prefix, then the country code.
            Source::Idd => {
                let idd = default.international_prefix()?.find(&digits)?;
                if idd.start() != 0 {
                    return None;
                }
                format!("+{}", &digits[idd.end()..])
            }
            // Only the default region's own code comes from the digits or the default.
            Source::Number | Source::Default => return None,
        };
        let regions = DATABASE.by_code(&code)?;
        let own_region = regions
            .iter()
            .find(|region| region.is_main_country_for_code())
            .or(regions.first())?
            .id()
            .parse()
            .ok()?;
        let own = phonenumber::parse(Some(own_region), &international)
            .ok()
            .filter(|number| number.code().value() == code && number.is_valid());
        let keeps_every_digit = |number: &phonenumber::PhoneNumber| {
            number.is_valid() && number.format().mode(Mode::E164).to_string() == international
        };
        match own {
            Some(own) if keeps_every_digit(&own) => Some(own),
            _ if keeps_every_digit(&first) => Some(first),
            // A trunk prefix typed after the country code (`+44 (0)20 …`),
            // dropped by the country's own rules.
            own => own,
        }
    }
}

/// The pin-auth surface's mobile number rule: a number must start with one of
/// the allowed prefixes (by default `+8525`, `+8526`, `+8529`) and then carry
/// exactly `digits_after_prefix` more digits (by default 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MobileRule {
    prefixes: Vec<String>,
    digits_after_prefix: usize,
    /// The longest prefix all allowed prefixes share (`+852`): a number
    /// without it is from another country, which the surface reports apart
    /// from a wrong prefix inside the right country.
    common_prefix: String,
}

/// Why a mobile number breaks the pin-auth rule. `Display` is for logs and
/// never names the number; the surface words each cause for its clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MobileError {
    #[error("the mobile number is blank")]
    Blank,
    /// The number lacks the prefix every allowed prefix shares (carried
    /// here): it is from another country.
    #[error("the mobile number does not start with the country prefix {0}")]
    WrongCountry(String),
    /// The number is from the right country but starts with none of the
    /// allowed prefixes (all carried here, in configuration order).
    #[error("the mobile number starts with none of the allowed prefixes {0:?}")]
    WrongPrefix(Vec<String>),
    /// The number has the wrong count of digits after its prefix (the
    /// count required is carried here).
    #[error("the mobile number does not have exactly {0} digits after its prefix")]
    WrongLength(usize),
    /// Characters other than digits after the prefix, or no E.164 number.
    #[error("the mobile number is not an E.164 number")]
    Malformed,
}

impl MobileRule {
    /// A rule over `prefixes` (each `+` and digits). With no prefixes, any
    /// E.164 number is accepted and `digits_after_prefix` is not used.
    pub fn new(prefixes: Vec<String>, digits_after_prefix: usize) -> Self {
        let common_prefix = longest_common_prefix(&prefixes);
        Self {
            prefixes,
            digits_after_prefix,
            common_prefix,
        }
    }

    /// The rule of the original service: `+852`, then 5, 6 or 9, then 7 digits.
    pub fn hong_kong() -> Self {
        Self::new(vec!["+8525".into(), "+8526".into(), "+8529".into()], 7)
    }

    /// The shared prefix of all allowed prefixes (e.g. `+852`), empty if none.
    pub fn country_prefix(&self) -> &str {
        &self.common_prefix
    }

    /// Checks `input` (surrounding white space ignored) against the rule.
    pub fn parse(&self, input: &str) -> Result<PhoneNumber, MobileError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(MobileError::Blank);
        }
        if self.prefixes.is_empty() {
            return PhoneNumber::parse_e164(input).map_err(|_| MobileError::Malformed);
        }
        if !input.starts_with(&self.common_prefix) {
            return Err(MobileError::WrongCountry(self.common_prefix.clone()));
        }
        let Some(rest) = self
            .prefixes
            .iter()
            .find_map(|prefix| input.strip_prefix(prefix.as_str()))
        else {
            return Err(MobileError::WrongPrefix(self.prefixes.clone()));
        };
        if !rest.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MobileError::Malformed);
        }
        if rest.len() != self.digits_after_prefix {
            return Err(MobileError::WrongLength(self.digits_after_prefix));
        }
        PhoneNumber::parse_e164(input).map_err(|_| MobileError::Malformed)
    }

    /// The number as the pin-auth clients display it: without the shared
    /// country prefix (`+85298353103` becomes `98353103`).
    pub fn local_part<'a>(&self, phone: &'a PhoneNumber) -> &'a str {
        phone
            .as_str()
            .strip_prefix(self.common_prefix.as_str())
            .filter(|rest| !rest.is_empty() && !self.common_prefix.is_empty())
            .unwrap_or(phone.as_str())
    }
}

fn longest_common_prefix(items: &[String]) -> String {
    let Some(first) = items.first() else {
        return String::new();
    };
    let mut len = first.len();
    for item in &items[1..] {
        len = first
            .bytes()
            .zip(item.bytes())
            .take(len)
            .take_while(|(a, b)| a == b)
            .count();
    }
    // Prefixes are configuration, so any text: two of them may share the
    // first bytes of different characters (`é`, `ê`). Cut between characters.
    while !first.is_char_boundary(len) {
        len -= 1;
    }
    first[..len].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_accepts_and_rejects() {
        assert!(PhoneNumber::parse_e164("+85261234567").is_ok());
        assert_eq!(PhoneNumber::parse_e164(""), Err(PhoneNumberError::Blank));
        assert_eq!(
            PhoneNumber::parse_e164("85261234567"),
            Err(PhoneNumberError::MissingPlus)
        );
        assert_eq!(PhoneNumber::parse_e164("+852 6123"), Err(PhoneNumberError::NotDigits));
        assert_eq!(PhoneNumber::parse_e164("+0123456789"), Err(PhoneNumberError::BadLength));
        assert_eq!(PhoneNumber::parse_e164("+1234567"), Err(PhoneNumberError::BadLength));
    }

    #[test]
    fn hong_kong_rule_matches_the_seed_examples() {
        let rule = MobileRule::hong_kong();
        for ok in ["+85251234567", "+85261234567", "+85291234567"] {
            assert!(rule.parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(rule.parse(""), Err(MobileError::Blank));
        let other_country = Err(MobileError::WrongCountry("+852".to_owned()));
        assert_eq!(rule.parse("+9101234567"), other_country);
        assert_eq!(rule.parse("+11112345678"), other_country);
        assert_eq!(
            rule.parse("+85212345678"),
            Err(MobileError::WrongPrefix(vec![
                "+8525".to_owned(),
                "+8526".to_owned(),
                "+8529".to_owned()
            ]))
        );
        assert_eq!(rule.parse("+8525234567"), Err(MobileError::WrongLength(7)));
        assert_eq!(rule.parse("+852523456789"), Err(MobileError::WrongLength(7)));
        assert_eq!(rule.parse("+8525123456x"), Err(MobileError::Malformed));
    }

    #[test]
    fn human_formats_normalise_to_one_number() {
        let policy = PhonePolicy::new("US", &[], vec![]).unwrap();
        for input in [
            "(206)372-1234",
            "206-372-1234",
            "+1 206 372 1234",
            " 2063721234 ",
            "+12063721234",
        ] {
            assert_eq!(policy.parse(input).unwrap().as_str(), "+12063721234", "{input}");
        }
        assert_eq!(policy.parse("+852 6123 4567").unwrap().as_str(), "+85261234567");
        assert_eq!(policy.parse(""), Err(PhoneInputError::Blank));
        for bad in ["+9180765XXX10", "12", "hello", "+1 000 000 0000", &"9".repeat(80)] {
            assert_eq!(policy.parse(bad), Err(PhoneInputError::Invalid), "{bad}");
        }
    }

    #[test]
    fn numbers_of_other_countries_keep_every_digit() {
        // Found by tests/it/phone_props.rs: read with the US rules, the `1` of
        // these numbers was taken for a national prefix and dropped, which
        // made other valid numbers (a German landline, a Chinese landline).
        let us = PhonePolicy::new("US", &[], vec![]).unwrap();
        for (input, e164) in [
            ("+49 1512 3456789", "+4915123456789"),
            ("+86 131 2345 6789", "+8613123456789"),
            ("+81 11-200-0000", "+81112000000"),
            ("+91 11 2000 0000", "+911120000000"),
            ("+33 1 42 76 49 78", "+33142764978"),
            ("011 49 1512 3456789", "+4915123456789"),
            ("+7 800 555 3535", "+78005553535"),
        ] {
            assert_eq!(us.parse(input).unwrap().as_str(), e164, "{input}");
        }
        let germany = PhonePolicy::new("DE", &[], vec![]).unwrap();
        assert_eq!(germany.parse("0033 6 12 34 56 78").unwrap().as_str(), "+33612345678");
        assert_eq!(germany.parse("01512 3456789").unwrap().as_str(), "+4915123456789");
    }

    #[test]
    fn region_and_prefix_allow_lists() {
        let only_hk = PhonePolicy::new("HK", &["hk".to_owned()], vec![]).unwrap();
        assert_eq!(only_hk.parse("6123 4567").unwrap().as_str(), "+85261234567");
        assert_eq!(only_hk.parse("+1 206 372 1234"), Err(PhoneInputError::NotAllowed));
        let only_prefix = PhonePolicy::new("US", &[], vec!["+1206".into()]).unwrap();
        assert!(only_prefix.parse("(206)372-1234").is_ok());
        assert_eq!(only_prefix.parse("(415)555-0100"), Err(PhoneInputError::NotAllowed));
        assert!(PhonePolicy::new("XX", &[], vec![]).is_err());
    }

    #[test]
    fn line_kinds_come_from_libphonenumber() {
        let policy = PhonePolicy::new("HK", &[], vec![]).unwrap();
        assert_eq!(policy.parse_with_kind("+85261234567").unwrap().1, LineKind::Mobile);
        assert_eq!(policy.parse_with_kind("+85221234567").unwrap().1, LineKind::FixedLine);
    }

    #[test]
    fn prefixes_differing_inside_a_character_do_not_panic() {
        // Found by tests/it/phone_props.rs: `é` and `ê` share their first UTF-8
        // byte, and the common prefix was cut inside the character.
        let rule = MobileRule::new(vec!["é".into(), "ê".into()], 0);
        assert_eq!(rule.country_prefix(), "");
        assert_eq!(
            rule.parse("+85261234567"),
            Err(MobileError::WrongPrefix(vec!["é".to_owned(), "ê".to_owned()]))
        );
        assert_eq!(
            MobileRule::new(vec!["+1é".into(), "+1è".into()], 0).country_prefix(),
            "+1"
        );
    }

    #[test]
    fn local_part_strips_the_country_prefix() {
        let rule = MobileRule::hong_kong();
        let phone = rule.parse("+85298353103").expect("valid");
        assert_eq!(rule.local_part(&phone), "98353103");
        let open = MobileRule::new(vec![], 0);
        let phone = open.parse("+14155550100").expect("valid");
        assert_eq!(open.local_part(&phone), "+14155550100");
    }
}
