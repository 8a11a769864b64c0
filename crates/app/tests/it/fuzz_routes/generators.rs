//! Random values: hostile text and JSON, JWT-shaped strings and correctly
//! signed tokens with arbitrary claims, phone numbers as people type them,
//! and the plausible values that let a request reach the stores.

use super::*;

pub(super) fn now_seconds() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// An HS256 JWT over `header` and `claims`, signed with the app's HS256
/// key when `sign` is true, else with a wrong one.
pub(super) fn jwt(header: &Value, claims: &Value, sign: bool) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let secret = if sign { JWT_HS256_KEY } else { "not-the-secret" };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// JWT-shaped strings: garbage segments, `alg: none`, other algorithms and
/// key ids, and tokens signed with the right secret whose claims are
/// well-formed, mistyped or missing, naming users that may not exist.
pub(super) fn jwt_like() -> BoxedStrategy<String> {
    let header = prop_oneof![
        4 => Just(json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"})),
        1 => Just(json!({"alg": "HS256", "typ": "pv-session+jwt", "kid": "k1"})),
        1 => Just(json!({"alg": "HS256", "typ": "JWT", "kid": "k1"})),
        1 => Just(json!({"alg": "none", "kid": "k1"})),
        1 => Just(json!({"alg": "HS256"})),
        1 => Just(json!({"alg": "HS512", "kid": "k1"})),
        1 => Just(json!({"alg": "RS256", "kid": "../../../../dev/null", "jku": "http://127.0.0.1:1/"})),
        1 => plain_json(1),
    ];
    let user_id = prop_oneof![
        1i64..5,
        Just(0i64),
        Just(-1i64),
        Just(i64::MAX),
        Just(i64::MIN),
        any::<i64>()
    ];
    let now = now_seconds();
    let access = (user_id, -100_000i64..100_000, any::<bool>()).prop_map(move |(user_id, skew, string_sub)| {
        json!({
            "sub": if string_sub { Value::String(user_id.to_string()) } else { json!(user_id) },
            "user_id": user_id,
            "iat": now + skew,
            "nbf": now + skew,
            "exp": now + skew + 1800,
            "iss": "phonegate",
            "aud": "phonegate:access",
            "jti": "00",
        })
    });
    let session = (phone_like(), plain_text(), -100_000i64..100_000).prop_map(move |(phone, nonce, skew)| {
        json!({
            "phone_number": phone,
            "nonce": nonce,
            "iat": now + skew,
            "exp": now + skew + 600,
            "iss": "phonegate",
            "aud": "phonegate:phone-verify",
        })
    });
    let claims = prop_oneof![access, session, plain_json(2)];
    // Sometimes one claim is removed or replaced by any value.
    let mutated = (claims, any::<prop::sample::Index>(), prop::option::of(plain_scalar())).prop_map(
        |(mut claims, index, replacement)| {
            if let Value::Object(object) = &mut claims
                && !object.is_empty()
            {
                let key = object.keys().nth(index.index(object.len())).unwrap().clone();
                match replacement {
                    Some(value) => object.insert(key, value),
                    None => object.remove(&key),
                };
            }
            claims
        },
    );
    prop_oneof![
        "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,43}",
        "eyJ[A-Za-z0-9_=+/-]{0,60}\\.{1,3}[A-Za-z0-9_=+/.-]{0,60}",
        (header.clone(), claims_clean(), any::<bool>()).prop_map(|(header, claims, sign)| jwt(&header, &claims, sign)),
        (header, mutated, Just(true)).prop_map(|(header, claims, sign)| jwt(&header, &claims, sign)),
    ]
    .boxed()
}

/// Well-formed access claims for the first few users, valid now.
pub(super) fn claims_clean() -> BoxedStrategy<Value> {
    let now = now_seconds();
    (1i64..5)
        .prop_map(move |user_id| {
            json!({
                "sub": user_id.to_string(), "user_id": user_id, "iat": now, "nbf": now, "exp": now + 1800,
                "iss": "phonegate", "aud": "phonegate:access", "jti": "00",
            })
        })
        .boxed()
}

/// Phone numbers as people type them, and things that only look like them.
pub(super) fn phone_like() -> BoxedStrategy<String> {
    prop_oneof![
        "\\+852[569][0-9]{7}",
        "\\+?1? ?\\(?(206|415|212)\\)?[ .-]?[2-9][0-9]{2}[ .-]?[0-9]{4}",
        "(00|\\+)[1-9][0-9]{6,16}",
        "[+0-9 ()\\-.]{0,20}",
        "\\+[0-9\u{660}-\u{669}\u{ff10}-\u{ff19}]{8,15}",
    ]
    .boxed()
}

/// Text: plausible values, Unicode, control characters, NUL, markup,
/// numbers as text, very long strings, and JWT-shaped strings.
pub(super) fn text() -> BoxedStrategy<String> {
    prop_oneof![7 => plain_text(), 1 => jwt_like()].boxed()
}

/// [`text`] without the JWT-shaped strings (which are built from it).
pub(super) fn plain_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => any::<String>(),
        2 => phone_like(),
        1 => prop::sample::select(vec![
            "", " ", "T", "F", "t", "fcm", "gcm", "aps", "ios", "android", "1234", "123456", "Profile",
            "admin@beyondvip.com", "a@b.c", "password", "0", "-1", "1e3", "null", "true", "[]", "{}",
            "dd3dc3146df82c5a2b1c54eb4648939f", "ss2FmfCXZ1wVLo+Kc3OksQ==", "Bearer x", "%00", "\u{0}",
            "\u{202e}\u{200b}\u{feff}", "'; DROP TABLE users; --", "<script>alert(1)</script>",
        ])
        .prop_map(str::to_owned),
        1 => "[\u{0}-\u{1f}\u{7f}-\u{9f}]{1,8}",
        1 => "[0-9a-f]{32}",
        1 => "[a-z@.]{1,20}@[a-z]{1,10}\\.[a-z]{2,3}",
        1 => (".{1,3}", 200usize..70_000).prop_map(|(unit, count)| unit.repeat(count)),
    ]
    .boxed()
}

pub(super) fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![4 => plain_scalar(), 1 => text().prop_map(Value::String)].boxed()
}

pub(super) fn plain_scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        plain_text().prop_map(Value::String),
    ]
    .boxed()
}

/// Any JSON value, nested at most `depth` levels.
pub(super) fn json_value(depth: u32) -> BoxedStrategy<Value> {
    nest(scalar(), depth).boxed()
}

/// [`json_value`] without JWT-shaped strings.
pub(super) fn plain_json(depth: u32) -> BoxedStrategy<Value> {
    nest(plain_scalar(), depth).boxed()
}

pub(super) fn nest(leaf: impl Strategy<Value = Value> + 'static, depth: u32) -> impl Strategy<Value = Value> {
    leaf.prop_recursive(depth, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_\\[\\]]{0,8}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

// --- random requests --------------------------------------------------------

/// Tokens the service really issued, so that some requests get past
/// authentication: a session token of the fuzz user and an application's
/// server token.
#[derive(Debug)]
pub(super) struct Known {
    pub(super) session_token: String,
    pub(super) app_token: String,
}

/// Values that look right for a field, so requests get past the first
/// checks and reach the stores: one of each kind, the field's name picks.
#[derive(Debug, Clone)]
pub(super) struct Plausible {
    pub(super) hk_mobile: String,
    pub(super) phone: String,
    pub(super) digits: String,
    pub(super) key: String,
    pub(super) email: String,
    pub(super) hex: String,
    pub(super) device: String,
    pub(super) flag: &'static str,
    pub(super) platform: &'static str,
    pub(super) mobile_os: &'static str,
    pub(super) jwt: String,
    /// Which known token (or none) a token field gets.
    pub(super) known: u8,
}

pub(super) fn plausible() -> BoxedStrategy<Plausible> {
    (
        (
            // A few fixed numbers recur, so per-number limits and cooldowns
            // are reached where the shipped limits are in force.
            prop_oneof!["\\+852[569][0-9]{7}", Just("+85261234567".to_owned())],
            prop_oneof![phone_like(), Just("(206) 372-1234".to_owned())],
            "[0-9]{4,6}",
            "[A-Za-z0-9+/]{22}==",
            "[a-z]{1,8}@[a-z]{1,8}\\.com",
        ),
        (
            "[0-9a-f]{32}",
            "[^\\p{C}]{1,40}",
            prop::sample::select(vec!["T", "F", "", "t", "true"]),
        ),
        (
            prop::sample::select(vec!["fcm", "gcm", "aps", "apns", ""]),
            prop::sample::select(vec!["ios", "android", "IOS", "windows", ""]),
            jwt_like(),
            0u8..4,
        ),
    )
        .prop_map(
            |((hk_mobile, phone, digits, key, email), (hex, device, flag), (platform, mobile_os, jwt, known))| {
                Plausible {
                    hk_mobile,
                    phone,
                    digits,
                    key,
                    email,
                    hex,
                    device,
                    flag,
                    platform,
                    mobile_os,
                    jwt,
                    known,
                }
            },
        )
        .boxed()
}

impl Plausible {
    pub(super) fn for_field(&self, name: &str, known: &Known) -> Value {
        let token = || match self.known {
            0 => known.session_token.clone(),
            1 => known.app_token.clone(),
            2 => self.jwt.clone(),
            _ => self.key.clone(),
        };
        Value::String(match name {
            "mobile" => self.hk_mobile.clone(),
            "phone_number" | "phone" => self.phone.clone(),
            "pin" | "verify_pin" | "security_code" | "district_id" => self.digits.clone(),
            "otp_auth_key" | "reset_token" => self.key.clone(),
            "email" if self.known == 0 => "fuzz@example.com".to_owned(),
            "email" => self.email.clone(),
            "password" | "password_confirmation" if self.known == 0 => "fuzz-password".to_owned(),
            "access_code" | "app_id" => self.hex.clone(),
            "call_verify" => self.flag.to_owned(),
            "platform" => self.platform.to_owned(),
            "mobile_os" => self.mobile_os.to_owned(),
            "session_token" => self.jwt.clone(),
            "auth_token" => token(),
            "token" if self.known < 2 => token(),
            "token" => self.digits.clone(),
            _ => self.device.clone(),
        })
    }
}

/// One field's value in a generated request.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) present: bool,
    /// For an object field: whether it is sent as an object of its fields.
    pub(super) as_object: bool,
    pub(super) value: Value,
    /// Sent instead of `value` when set.
    pub(super) plausible: Option<Plausible>,
}

pub(super) fn slots() -> BoxedStrategy<Vec<Slot>> {
    prop::collection::vec(
        (
            prop::bool::weighted(0.8),
            prop::bool::weighted(0.8),
            prop_oneof![4 => scalar(), 1 => json_value(2)],
            prop::option::weighted(0.5, plausible()),
        )
            .prop_map(|(present, as_object, value, plausible)| Slot {
                present,
                as_object,
                value,
                plausible,
            }),
        12,
    )
    .boxed()
}

/// The route's parameters filled from `slots`.
pub(super) fn parameters(
    fields: &[Field],
    slots: &mut impl Iterator<Item = Slot>,
    known: &Known,
) -> Map<String, Value> {
    let mut object = Map::new();
    for field in fields {
        let slot = slots.next().unwrap_or(Slot {
            present: false,
            as_object: false,
            value: Value::Null,
            plausible: None,
        });
        if !slot.present {
            continue;
        }
        match field {
            Leaf(name) => {
                let value = match &slot.plausible {
                    Some(plausible) => plausible.for_field(name, known),
                    None => slot.value,
                };
                object.insert((*name).to_owned(), value);
            }
            Object(name, inner) if slot.as_object => {
                object.insert((*name).to_owned(), Value::Object(parameters(inner, slots, known)));
            }
            Object(name, _) => {
                object.insert((*name).to_owned(), slot.value);
            }
        }
    }
    object
}
