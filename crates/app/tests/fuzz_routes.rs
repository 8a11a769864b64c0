//! Property tests over every route of the four surfaces and the ops
//! endpoints, against the real router (built as `phonegate serve` builds it,
//! with the console SMS provider).
//!
//! `random_requests_never_fail_the_server` sends requests with random
//! methods, content types, bodies built from each route's real field names
//! with hostile values, query strings, Authorization headers (garbage,
//! JWT-shaped garbage, and tokens correctly signed with the test secret but
//! carrying arbitrary claims), and checks that every answer is below 500
//! and that every error is in its surface's own shape.
//! `valid_flows_succeed_for_any_number` runs each surface's happy path with
//! random valid numbers typed in random formats.
//!
//! Case counts are chosen so that these tests take a few seconds in CI;
//! `PROPTEST_CASES=20000 cargo test -p phonegate --test fuzz_routes
//! random_requests` runs a longer search (the flow test builds a service per
//! case, so give it far fewer). A failure prints the minimal request; it
//! becomes a plain regression test (at the end of this file) rather than a
//! persisted seed file.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::{
    body::Body,
    http::{HeaderValue, Method, Request, StatusCode, header},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{TestApp, spawn_app_with, spawn_app_with_limits};
use hmac::{Hmac, Mac as _};
use http_body_util::BodyExt as _;
use phonegate::settings::Settings;
use phonegate_adapters::{on_both_backends, testing::TestBackend};
use phonegate_domain::phone::{LineKind, PhonePolicy};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use tower::ServiceExt as _;

/// The master secret of the app under test.
const JWT_SECRET: &str = "fuzz-master-secret-0123456789abcdefgh";
/// Its HS256 key, so the test can sign tokens with arbitrary claims and
/// reach the code behind the signature check.
const JWT_HS256_KEY: &str = "fuzz-hs256-key-0123456789abcdefgh";

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

fn configure(settings: &mut Settings) {
    settings.auth.jwt_secret = Some(SecretString::from(JWT_SECRET));
    settings.auth.jwt_hs256_key = Some(SecretString::from(JWT_HS256_KEY));
}

// --- the routes -----------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Surface {
    PinAuth,
    PhoneVerify,
    PhoneLogin,
    Tokens,
    Ops,
}

/// A parameter a route reads: a value, or an object of parameters
/// (pin-auth's `user_auth[address_attributes][…]`).
#[derive(Debug)]
enum Field {
    Leaf(&'static str),
    Object(&'static str, &'static [Field]),
}

use Field::{Leaf, Object};

#[derive(Debug)]
struct Route {
    surface: Surface,
    /// The methods mounted on the path.
    methods: &'static [&'static str],
    /// `{user_id}` is replaced by a random path segment.
    path: &'static str,
    /// Whether the path also answers with a `.json` suffix.
    json_suffix: bool,
    fields: &'static [Field],
}

const SIGNUP_FIELDS: &[Field] = &[Object(
    "user_auth",
    &[
        Leaf("mobile"),
        Leaf("first_name"),
        Leaf("last_name"),
        Object(
            "address_attributes",
            &[
                Leaf("street"),
                Leaf("flat"),
                Leaf("building"),
                Leaf("district_id"),
                Leaf("address_type"),
            ],
        ),
    ],
)];

/// Every mounted route (`crates/api/src/*.rs`).
const ROUTES: &[Route] = &[
    // pin-auth (seed 001)
    route(Surface::PinAuth, &["POST"], "/api/v1/auth/send_pin", &[Leaf("mobile")]),
    route(Surface::PinAuth, &["POST"], "/api/v1/auth/signup", SIGNUP_FIELDS),
    route(
        Surface::PinAuth,
        &["POST"],
        "/api/v1/auth/verify",
        &[Leaf("otp_auth_key"), Leaf("pin")],
    ),
    route(Surface::PinAuth, &["GET"], "/api/v1/auth/current_user_profile", &[]),
    route(
        Surface::PinAuth,
        &["POST"],
        "/api/v1/auth/register_device",
        &[Leaf("handle"), Leaf("platform")],
    ),
    // phone-verify (seed 000)
    route(
        Surface::PhoneVerify,
        &["POST"],
        "/api/phone/register",
        &[Leaf("phone_number")],
    ),
    route(
        Surface::PhoneVerify,
        &["POST"],
        "/api/phone/verify",
        &[Leaf("phone_number"), Leaf("security_code"), Leaf("session_token")],
    ),
    // phone-login (seed 003)
    route(Surface::PhoneLogin, &["GET"], "/v1/auth/ping", &[]),
    route(
        Surface::PhoneLogin,
        &["POST"],
        "/v1/auth/phone_login",
        &[Leaf("phone_number"), Leaf("device_id"), Leaf("call_verify")],
    ),
    route(
        Surface::PhoneLogin,
        &["POST"],
        "/v1/auth/check_pin",
        &[Leaf("phone_number"), Leaf("device_id"), Leaf("verify_pin")],
    ),
    route(
        Surface::PhoneLogin,
        &["POST"],
        "/v1/auth/check_access_code",
        &[Leaf("access_code"), Leaf("device_id")],
    ),
    // tokens (seed 002), each also with `.json`
    tokens(
        &["POST"],
        "/api/v1/tokens",
        &[
            Leaf("email"),
            Leaf("password"),
            Leaf("device_token"),
            Leaf("mobile_os"),
            Leaf("app_id"),
        ],
    ),
    tokens(
        &["POST", "PUT"],
        "/api/v1/tokens/reset",
        &[
            Leaf("email"),
            Leaf("reset_token"),
            Leaf("password"),
            Leaf("password_confirmation"),
        ],
    ),
    tokens(
        &["POST"],
        "/api/v1/tokens/introspect",
        &[Leaf("auth_token"), Leaf("token")],
    ),
    tokens(
        &["POST"],
        "/api/v1/settings/send_phone_verification",
        &[Leaf("auth_token"), Leaf("phone")],
    ),
    tokens(
        &["POST"],
        "/api/v1/settings/verify_phone",
        &[Leaf("auth_token"), Leaf("token")],
    ),
    tokens(
        &["DELETE"],
        "/api/v1/tokens/{user_id}",
        &[Leaf("auth_token"), Leaf("apn_token")],
    ),
    // ops
    route(Surface::Ops, &["GET"], "/healthz", &[]),
    route(Surface::Ops, &["GET"], "/readyz", &[]),
];

const fn route(
    surface: Surface,
    methods: &'static [&'static str],
    path: &'static str,
    fields: &'static [Field],
) -> Route {
    Route {
        surface,
        methods,
        path,
        json_suffix: false,
        fields,
    }
}

const fn tokens(methods: &'static [&'static str], path: &'static str, fields: &'static [Field]) -> Route {
    Route {
        surface: Surface::Tokens,
        methods,
        path,
        json_suffix: true,
        fields,
    }
}

// --- random values ----------------------------------------------------------

fn now_seconds() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// An HS256 JWT over `header` and `claims`, signed with the app's HS256
/// key when `sign` is true, else with a wrong one.
fn jwt(header: &Value, claims: &Value, sign: bool) -> String {
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
fn jwt_like() -> BoxedStrategy<String> {
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
fn claims_clean() -> BoxedStrategy<Value> {
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
fn phone_like() -> BoxedStrategy<String> {
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
fn text() -> BoxedStrategy<String> {
    prop_oneof![7 => plain_text(), 1 => jwt_like()].boxed()
}

/// [`text`] without the JWT-shaped strings (which are built from it).
fn plain_text() -> BoxedStrategy<String> {
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

fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![4 => plain_scalar(), 1 => text().prop_map(Value::String)].boxed()
}

fn plain_scalar() -> BoxedStrategy<Value> {
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
fn json_value(depth: u32) -> BoxedStrategy<Value> {
    nest(scalar(), depth).boxed()
}

/// [`json_value`] without JWT-shaped strings.
fn plain_json(depth: u32) -> BoxedStrategy<Value> {
    nest(plain_scalar(), depth).boxed()
}

fn nest(leaf: impl Strategy<Value = Value> + 'static, depth: u32) -> impl Strategy<Value = Value> {
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
struct Known {
    session_token: String,
    app_token: String,
}

/// Values that look right for a field, so requests get past the first
/// checks and reach the stores: one of each kind, the field's name picks.
#[derive(Debug, Clone)]
struct Plausible {
    hk_mobile: String,
    phone: String,
    digits: String,
    key: String,
    email: String,
    hex: String,
    device: String,
    flag: &'static str,
    platform: &'static str,
    mobile_os: &'static str,
    jwt: String,
    /// Which known token (or none) a token field gets.
    known: u8,
}

fn plausible() -> BoxedStrategy<Plausible> {
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
    fn for_field(&self, name: &str, known: &Known) -> Value {
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
struct Slot {
    present: bool,
    /// For an object field: whether it is sent as an object of its fields.
    as_object: bool,
    value: Value,
    /// Sent instead of `value` when set.
    plausible: Option<Plausible>,
}

fn slots() -> BoxedStrategy<Vec<Slot>> {
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
fn parameters(fields: &[Field], slots: &mut impl Iterator<Item = Slot>, known: &Known) -> Map<String, Value> {
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

/// The `(key, value)` pairs of a Rails-style form for `object`.
fn form_pairs(object: &Map<String, Value>) -> Vec<(String, String)> {
    fn walk(key: &str, value: &Value, pairs: &mut Vec<(String, String)>) {
        match value {
            Value::Object(object) => {
                for (inner, value) in object {
                    walk(&format!("{key}[{inner}]"), value, pairs);
                }
            }
            Value::Array(items) => {
                for item in items {
                    walk(&format!("{key}[]"), item, pairs);
                }
            }
            Value::String(text) => pairs.push((key.to_owned(), text.clone())),
            Value::Null => pairs.push((key.to_owned(), String::new())),
            other => pairs.push((key.to_owned(), other.to_string())),
        }
    }
    let mut pairs = vec![];
    for (key, value) in object {
        walk(key, value, &mut pairs);
    }
    pairs
}

fn urlencode(object: &Map<String, Value>) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form_pairs(object))
        .finish()
}

#[derive(Clone)]
enum Encoding {
    Json,
    Form,
    /// Parameters in the query string, no body.
    Query,
    /// Valid JSON that is not an object.
    JsonNotObject(Value),
    Bytes(Vec<u8>),
    Empty,
}

fn encoding() -> BoxedStrategy<Encoding> {
    prop_oneof![
        4 => Just(Encoding::Json),
        3 => Just(Encoding::Form),
        3 => Just(Encoding::Query),
        1 => json_value(1).prop_filter("not an object", |v| !v.is_object()).prop_map(Encoding::JsonNotObject),
        1 => prop::collection::vec(any::<u8>(), 0..256).prop_map(Encoding::Bytes),
        1 => Just(Encoding::Empty),
    ]
    .boxed()
}

fn content_type() -> BoxedStrategy<Option<Vec<u8>>> {
    prop_oneof![
        3 => Just(None),
        3 => Just(Some(b"application/json".to_vec())),
        3 => Just(Some(b"application/x-www-form-urlencoded".to_vec())),
        1 => Just(Some(b"application/json; charset=utf-8".to_vec())),
        1 => Just(Some(b"multipart/form-data; boundary=x".to_vec())),
        1 => Just(Some(b"text/plain".to_vec())),
        1 => header_bytes().prop_map(Some),
    ]
    .boxed()
}

/// Bytes any header value may carry: visible ASCII, space, tab and obs-text.
fn header_bytes() -> BoxedStrategy<Vec<u8>> {
    prop::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..60).boxed()
}

fn authorization() -> BoxedStrategy<Option<Vec<u8>>> {
    prop_oneof![
        3 => Just(None),
        4 => jwt_like().prop_map(|token| Some(format!("Bearer {token}").into_bytes())),
        // Signed, well-formed and valid: the first users' own tokens.
        2 => claims_clean().prop_map(|claims| {
            let token = jwt(&json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"}), &claims, true);
            Some(format!("Bearer {token}").into_bytes())
        }),
        1 => "[A-Za-z0-9+/=._~-]{0,80}".prop_map(|token| Some(format!("Bearer {token}").into_bytes())),
        1 => (prop::sample::select(vec!["bearer", "BEARER", "Bearer  ", "Basic", "Token", ""]), jwt_like())
            .prop_map(|(scheme, token)| Some(format!("{scheme} {token}").into_bytes())),
        1 => header_bytes().prop_map(Some),
    ]
    .boxed()
}

/// Path segments for `DELETE /api/v1/tokens/{user_id}`, percent-encoded.
fn user_id_segment() -> BoxedStrategy<String> {
    prop_oneof![
        (1i64..5).prop_map(|id| id.to_string()),
        any::<i64>().prop_map(|id| id.to_string()),
        Just("99999999999999999999999".to_owned()),
        "[0-9]{1,3}\\.json",
        Just("reset".to_owned()),
        Just("introspect.json".to_owned()),
        ".{1,12}".prop_map(|text| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>()),
        "%[0-9A-F]{2}",
    ]
    .boxed()
}

#[derive(Clone)]
struct Case {
    route: usize,
    method: Method,
    json_suffix: bool,
    user_id: String,
    encoding: Encoding,
    slots: Vec<Slot>,
    /// Random extra parameters, merged into the route's own.
    extra: Map<String, Value>,
    /// A query string besides the body: parameters, or raw garbage.
    query: Option<Result<Vec<Slot>, String>>,
    /// `None`: the encoding's own content type.
    content_type: Option<Option<Vec<u8>>>,
    authorization: Option<Vec<u8>>,
    request_id: Option<Vec<u8>>,
    host: Option<Vec<u8>>,
}

fn case() -> impl Strategy<Value = Case> {
    let method = prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::PATCH),
    ];
    let query = prop::option::weighted(
        0.3,
        prop_oneof![
            slots().prop_map(Ok),
            "([a-zA-Z0-9\\[\\]=&;+._~!$'()*,:@/?-]|%[0-9a-fA-F]{2}|%){0,80}".prop_map(Err),
        ],
    );
    let extra = prop::collection::btree_map("[a-z_\\[\\]]{1,10}", json_value(1), 0..2)
        .prop_map(|map| map.into_iter().collect::<Map<_, _>>());
    (
        (
            0..ROUTES.len(),
            prop::option::weighted(0.35, method),
            any::<bool>(),
            user_id_segment(),
        ),
        (encoding(), slots(), extra, query),
        (
            prop::option::weighted(0.5, content_type()),
            authorization(),
            prop::option::weighted(0.1, header_bytes()),
            prop::option::weighted(0.1, header_bytes()),
        ),
    )
        .prop_map(
            |(
                (route, method, json_suffix, user_id),
                (encoding, slots, extra, query),
                (content_type, authorization, request_id, host),
            )| {
                // Mostly the route's own method, so requests reach the handlers.
                let method = method.unwrap_or_else(|| ROUTES[route].methods[0].parse().unwrap());
                Case {
                    route,
                    method,
                    json_suffix,
                    user_id,
                    encoding,
                    slots,
                    extra,
                    query,
                    content_type,
                    authorization,
                    request_id,
                    host,
                }
            },
        )
}

/// Bytes shown as text, so a failing case reads like the request it is.
struct Lossy<'a>(&'a [u8]);

impl std::fmt::Debug for Lossy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.0))
    }
}

impl std::fmt::Debug for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Json => f.write_str("Json"),
            Self::Form => f.write_str("Form"),
            Self::Query => f.write_str("Query"),
            Self::JsonNotObject(value) => write!(f, "JsonNotObject({value})"),
            Self::Bytes(bytes) => write!(f, "Bytes({:?})", Lossy(bytes)),
            Self::Empty => f.write_str("Empty"),
        }
    }
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn lossy(bytes: &Option<Vec<u8>>) -> Option<Lossy<'_>> {
            bytes.as_deref().map(Lossy)
        }
        f.debug_struct("Case")
            .field("method", &self.method)
            .field("path", &self.path())
            .field("encoding", &self.encoding)
            .field("slots", &self.slots)
            .field("extra", &self.extra)
            .field("query", &self.query)
            .field("content_type", &self.content_type.as_ref().map(lossy))
            .field("authorization", &lossy(&self.authorization))
            .field("request_id", &lossy(&self.request_id))
            .field("host", &lossy(&self.host))
            .finish()
    }
}

impl Case {
    fn route(&self) -> &'static Route {
        &ROUTES[self.route]
    }

    fn path(&self) -> String {
        let route = self.route();
        let mut path = route.path.replace("{user_id}", &self.user_id);
        if route.json_suffix && self.json_suffix {
            path.push_str(".json");
        }
        path
    }

    fn request(&self, known: &Known) -> Request<Body> {
        let route = self.route();
        let mut params = parameters(route.fields, &mut self.slots.iter().cloned(), known);
        for (key, value) in &self.extra {
            params.entry(key.clone()).or_insert_with(|| value.clone());
        }
        let mut query = match &self.query {
            None => String::new(),
            Some(Ok(slots)) => urlencode(&parameters(route.fields, &mut slots.iter().cloned(), known)),
            Some(Err(raw)) => raw.clone(),
        };
        let body = match &self.encoding {
            Encoding::Json => Value::Object(params).to_string().into_bytes(),
            Encoding::Form => urlencode(&params).into_bytes(),
            Encoding::Query => {
                let encoded = urlencode(&params);
                if !query.is_empty() && !encoded.is_empty() {
                    query.push('&');
                }
                query.push_str(&encoded);
                vec![]
            }
            Encoding::JsonNotObject(value) => value.to_string().into_bytes(),
            Encoding::Bytes(bytes) => bytes.clone(),
            Encoding::Empty => vec![],
        };
        let mut uri = self.path();
        // A URI longer than `http` accepts (and hyper serves) never reaches
        // the router; such a query string is left out.
        if !query.is_empty() && query.len() < 60_000 {
            uri = format!("{uri}?{query}");
        }
        let mut request = Request::builder().method(self.method.clone()).uri(uri);
        let own_content_type = match self.encoding {
            Encoding::Json | Encoding::JsonNotObject(_) => Some(b"application/json".to_vec()),
            Encoding::Form => Some(b"application/x-www-form-urlencoded".to_vec()),
            Encoding::Query | Encoding::Bytes(_) | Encoding::Empty => None,
        };
        let content_type = self.content_type.clone().unwrap_or(own_content_type);
        let headers = [
            (header::CONTENT_TYPE, &content_type),
            (header::AUTHORIZATION, &self.authorization),
            (header::HeaderName::from_static("x-request-id"), &self.request_id),
        ];
        for (name, value) in headers {
            if let Some(value) = value {
                request = request.header(name, HeaderValue::from_bytes(value).unwrap());
            }
        }
        let host = self.host.clone().unwrap_or_else(|| b"localhost:8080".to_vec());
        request = request.header(header::HOST, HeaderValue::from_bytes(&host).unwrap());
        request.body(Body::from(body)).unwrap()
    }
}

// --- checking answers ---------------------------------------------------------

/// An answer: status, whether it has a request id, and the body as JSON
/// (`Null` when empty; `Err` with the text when not JSON).
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    request_id: bool,
    body: Result<Value, String>,
}

/// Sends `request`, then delivers what it queued (codes go out through the
/// outbox), as `TestApp::send` does.
async fn send(app: &TestApp, request: Request<Body>) -> Answer {
    let response = app.router.clone().oneshot(request).await.unwrap();
    app.deliver_outbox().await;
    let status = response.status();
    let request_id = response.headers().contains_key("x-request-id");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_slice(&bytes).map_err(|_| String::from_utf8_lossy(&bytes).into_owned())
    };
    Answer {
        status,
        request_id,
        body,
    }
}

fn is_string(value: Option<&Value>) -> bool {
    value.is_some_and(Value::is_string)
}

/// Whether `body` is an error in `surface`'s own shape.
fn error_shape(surface: Surface, status: StatusCode, body: &Value) -> bool {
    let Some(object) = body.as_object() else {
        // Only the ops endpoints, which have no error shape of their own,
        // answer a wrong method with axum's empty 405.
        return surface == Surface::Ops && body.is_null() && status == StatusCode::METHOD_NOT_ALLOWED;
    };
    match surface {
        // {"errors": "…"}
        Surface::PinAuth => object.len() == 1 && is_string(object.get("errors")),
        // {"detail": "…"} or {"<field>": ["…"], …}
        Surface::PhoneVerify => {
            (object.len() == 1 && is_string(object.get("detail")))
                || (!object.is_empty()
                    && object.values().all(|messages| {
                        messages
                            .as_array()
                            .is_some_and(|messages| !messages.is_empty() && messages.iter().all(Value::is_string))
                    }))
        }
        Surface::PhoneLogin => envelope(body),
        // {"error": "…"}
        Surface::Tokens => object.len() == 1 && is_string(object.get("error")),
        Surface::Ops => false,
    }
}

/// `{"res_info": {"code": <int>, "code_info": "…"}, "res_content"?: …}`.
fn envelope(body: &Value) -> bool {
    let Some(object) = body.as_object() else {
        return false;
    };
    let info_ok = object.get("res_info").and_then(Value::as_object).is_some_and(|info| {
        info.len() == 2 && info.get("code").is_some_and(Value::is_i64) && is_string(info.get("code_info"))
    });
    info_ok && object.keys().all(|key| key == "res_info" || key == "res_content")
}

fn check(case: &Case, answer: &Answer) -> Result<(), TestCaseError> {
    let surface = case.route().surface;
    let context = || format!("{} {} -> {} {:?}", case.method, case.path(), answer.status, answer.body);
    prop_assert!(answer.status.as_u16() < 500, "a server error: {}", context());
    prop_assert!(answer.request_id, "no x-request-id: {}", context());
    let body = match &answer.body {
        Ok(body) => body,
        Err(text) => return Err(TestCaseError::fail(format!("not JSON ({text:?}): {}", context()))),
    };
    prop_assert_ne!(
        answer.status,
        StatusCode::NOT_FOUND,
        "a mounted route answered 404: {}",
        context()
    );
    if answer.status.is_client_error() {
        prop_assert!(
            error_shape(surface, answer.status, body),
            "not in the surface's error shape: {}",
            context()
        );
    } else if surface == Surface::PhoneLogin {
        prop_assert!(envelope(body), "not in the envelope: {}", context());
    } else if answer.status == StatusCode::NO_CONTENT {
        prop_assert!(body.is_null(), "a body with 204: {}", context());
    } else {
        prop_assert!(body.is_object(), "not a JSON object: {}", context());
    }
    // The wrong method is refused with 405, whatever else is wrong.
    if !case.route().methods.contains(&case.method.as_str()) && !shadowed(case) {
        prop_assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{}", context());
    }
    Ok(())
}

/// Whether a `/api/v1/tokens/{user_id}` path is really another tokens
/// route (`/api/v1/tokens/reset`), whose methods then apply.
fn shadowed(case: &Case) -> bool {
    let path = case.path();
    case.route().path.contains("{user_id}")
        && ["reset", "reset.json", "introspect", "introspect.json"].contains(&path.rsplit('/').next().unwrap_or(""))
}

// --- the properties -----------------------------------------------------------

/// Every route, any method, content type, body, query and credentials:
/// never a 5xx, always the surface's own shape. On SQLite the rate limits
/// are lifted so requests reach the stores; on Postgres the shipped limits
/// stay, so 429s in each surface's shape are fuzzed too.
async fn random_requests_never_fail_the_server(backend: TestBackend) {
    let app = match backend {
        TestBackend::Sqlite => spawn_app_with(backend, configure).await,
        TestBackend::Postgres => spawn_app_with_limits(backend, configure).await,
    };
    // A user (user 1, whom some signed tokens name), a session token of
    // theirs and an application's token, so some requests get past
    // authentication.
    app.create_user("fuzz@example.com", "fuzz-password", "Fuzz", "Er").await;
    let signed_in = post(
        &app,
        "/api/v1/tokens",
        &json!({"email": "fuzz@example.com", "password": "fuzz-password"}),
        false,
    )
    .await;
    let (_, app_token) = app.create_application("fuzz").await;
    let known = Known {
        session_token: signed_in.body.unwrap()["token"].as_str().unwrap().to_owned(),
        app_token: app_token.expose().to_owned(),
    };
    let cases = if backend == TestBackend::Sqlite { 1500 } else { 400 };
    let handle = tokio::runtime::Handle::current();
    run_cases(cases, case, |case| {
        let answer = handle.block_on(send(&app, case.request(&known)));
        check(&case, &answer)
    });
}

/// Runs `test` on `cases` values of `strategy()`, on a thread with a large
/// stack: proptest's strategy trees are deep and their frames large in
/// debug builds. The test may block on the current runtime's handle.
fn run_cases<S: Strategy>(
    cases: u32,
    strategy: impl FnOnce() -> S + Send,
    test: impl Fn(S::Value) -> Result<(), TestCaseError> + Send,
) {
    let result = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .stack_size(64 << 20)
                .spawn_scoped(scope, move || {
                    TestRunner::new(config(cases))
                        .run(&strategy(), test)
                        .map_err(|error| error.to_string())
                })
                .unwrap()
                .join()
                .unwrap()
        })
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

// --- well-formed flows ----------------------------------------------------------

/// A valid US number (area codes libphonenumber knows) as E.164 and in a
/// format people type.
fn us_number() -> impl Strategy<Value = (String, String)> {
    (
        prop::sample::select(vec!["206", "415", "212", "312", "646"]),
        "[2-9][0-9]{2}",
        "[0-9]{4}",
        0..6,
    )
        .prop_map(|(area, exchange, line, format)| {
            let e164 = format!("+1{area}{exchange}{line}");
            let typed = match format {
                0 => format!("({area}){exchange}-{line}"),
                1 => format!("{area}-{exchange}-{line}"),
                2 => format!("+1 {area} {exchange} {line}"),
                3 => format!("{area}.{exchange}.{line}"),
                4 => format!(" 1 ({area}) {exchange}-{line} "),
                _ => e164.clone(),
            };
            (e164, typed)
        })
}

/// A Hong Kong number that pin-auth's rule accepts and libphonenumber
/// knows as a mobile (codes are texted only to mobiles).
fn hk_mobile() -> impl Strategy<Value = String> {
    let hong_kong = PhonePolicy::new("HK", &[], vec![]).unwrap();
    "\\+852[569][0-9]{7}".prop_filter("a mobile number", move |number| {
        matches!(hong_kong.parse_with_kind(number), Ok((_, LineKind::Mobile)))
    })
}

/// Names and handles: any printable text, short or long.
fn printable(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[^\\p{{C}}\\s][^\\p{{C}}]{{0,{}}}[^\\p{{C}}\\s]", max - 2)).unwrap()
}

#[derive(Debug, Clone)]
struct Flow {
    hk_mobile: String,
    us: (String, String),
    device_id: String,
    call: bool,
    first_name: String,
    platform: &'static str,
    handle: String,
    form: bool,
    email: String,
    password: String,
}

fn flow() -> impl Strategy<Value = Flow> {
    (
        (hk_mobile(), us_number(), printable(60), any::<bool>()),
        (
            printable(255),
            prop::sample::select(vec!["fcm", "gcm", "aps"]),
            printable(200),
            any::<bool>(),
        ),
        ("[a-z0-9._+-]{1,20}@[a-z0-9-]{1,20}\\.[a-z]{2,6}", "[^\u{0}]{8,40}"),
    )
        .prop_map(
            |((hk_mobile, us, device_id, call), (first_name, platform, handle, form), (email, password))| Flow {
                hk_mobile,
                us,
                device_id,
                call,
                first_name,
                platform,
                handle,
                form,
                email,
                password,
            },
        )
}

/// POSTs `params` as JSON or as a Rails-style form.
async fn post(app: &TestApp, path: &str, params: &Value, form: bool) -> Answer {
    let object = params.as_object().unwrap();
    let (content_type, body) = if form {
        ("application/x-www-form-urlencoded", urlencode(object))
    } else {
        ("application/json", params.to_string())
    };
    send(
        app,
        Request::post(path)
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

async fn run_flow(app: &TestApp, flow: &Flow) -> Result<(), TestCaseError> {
    let ok = |answer: &Answer, what: &str| -> Result<Value, TestCaseError> {
        prop_assert!(answer.status.is_success(), "{what}: {answer:?}");
        Ok(answer.body.clone().unwrap_or_default())
    };
    let form = flow.form;

    // pin-auth: signup, a wrong pin, the right pin, the profile, a device.
    let signup = json!({"user_auth": {
        "mobile": flow.hk_mobile, "first_name": flow.first_name, "last_name": "L",
        "address_attributes": {"district_id": "1", "address_type": "Profile", "street": flow.handle.chars().take(255).collect::<String>()},
    }});
    let body = ok(&post(app, "/api/v1/auth/signup", &signup, form).await, "signup")?;
    let key = body["otp_auth_key"].as_str().unwrap().to_owned();
    let pin = app.last_code_to(&flow.hk_mobile);
    let wrong = if pin == "0000" { "1111" } else { "0000" };
    let answer = post(
        app,
        "/api/v1/auth/verify",
        &json!({"otp_auth_key": key, "pin": wrong}),
        form,
    )
    .await;
    prop_assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    prop_assert!(error_shape(
        Surface::PinAuth,
        answer.status,
        answer.body.as_ref().unwrap()
    ));
    let body = ok(
        &post(
            app,
            "/api/v1/auth/verify",
            &json!({"otp_auth_key": key, "pin": pin}),
            form,
        )
        .await,
        "verify",
    )?;
    let jwt = body["jwt_token"].as_str().unwrap().to_owned();
    prop_assert_eq!(&body["user"]["user_profile"]["first_name"], &json!(flow.first_name));
    let profile = ok(
        &get_with_bearer(app, "/api/v1/auth/current_user_profile", &jwt).await,
        "profile",
    )?;
    prop_assert_eq!(
        profile["user_profile"]["mobile"].as_str().unwrap(),
        flow.hk_mobile.strip_prefix("+852").unwrap()
    );
    let answer = send(
        app,
        Request::post("/api/v1/auth/register_device")
            .header(header::HOST, "localhost")
            .header(header::AUTHORIZATION, format!("Bearer {jwt}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"handle": flow.handle, "platform": flow.platform}).to_string(),
            ))
            .unwrap(),
    )
    .await;
    prop_assert_eq!(answer.status, StatusCode::NO_CONTENT, "register_device: {:?}", answer);

    // phone-verify: register, then verify with the code.
    let (e164, typed) = &flow.us;
    let body = ok(
        &post(app, "/api/phone/register", &json!({"phone_number": typed}), form).await,
        "register",
    )?;
    let session_token = body["session_token"].as_str().unwrap().to_owned();
    let code = app.last_code_to(e164);
    let verify = json!({"phone_number": typed, "security_code": code, "session_token": session_token});
    let body = ok(&post(app, "/api/phone/verify", &verify, form).await, "phone verify")?;
    prop_assert_eq!(body, json!({"message": "Security code is valid."}));

    // phone-login: a PIN by SMS or call, an access code, its check.
    let login =
        json!({"phone_number": typed, "device_id": flow.device_id, "call_verify": if flow.call { "T" } else { "F" }});
    let query = urlencode(login.as_object().unwrap());
    let body = ok(
        &post_query(app, &format!("/v1/auth/phone_login?{query}")).await,
        "phone_login",
    )?;
    // The number became a user through phone-verify above.
    prop_assert_eq!(&body["res_info"]["code"], &json!(2));
    let pin = if flow.call {
        app.last_spoken_code_to(e164)
    } else {
        app.last_code_to(e164)
    };
    let check = json!({"phone_number": e164, "device_id": flow.device_id, "verify_pin": pin});
    let body = ok(&post(app, "/v1/auth/check_pin", &check, form).await, "check_pin")?;
    let access_code = body["res_content"]["access_code"].as_str().unwrap().to_owned();
    let body = ok(
        &post(
            app,
            "/v1/auth/check_access_code",
            &json!({"access_code": access_code, "device_id": flow.device_id}),
            form,
        )
        .await,
        "check_access_code",
    )?;
    prop_assert_eq!(&body["res_content"]["phone_number"], &json!(e164));

    // tokens: sign in, confirm another number, introspect, sign out.
    let user_id = app.create_user(&flow.email, &flow.password, "F", "L").await;
    let body = ok(
        &post(app, "/api/v1/tokens.json", &json!({"email": flow.email, "password": flow.password, "device_token": flow.device_id, "mobile_os": "ios"}), form).await,
        "sign in",
    )?;
    let token = body["token"].as_str().unwrap().to_owned();
    prop_assert_eq!(&body["user_info"]["id"], &json!(user_id));
    // The phone-verify user owns the US number; a free one is confirmed here.
    let own = format!("+1415{}", &e164[5..]);
    let own = if own == *e164 {
        format!("+1206{}", &e164[5..])
    } else {
        own
    };
    ok(
        &post(
            app,
            "/api/v1/settings/send_phone_verification",
            &json!({"auth_token": token, "phone": own}),
            form,
        )
        .await,
        "send_phone_verification",
    )?;
    let code = app.last_code_to(&own);
    ok(
        &post(
            app,
            "/api/v1/settings/verify_phone",
            &json!({"auth_token": token, "token": code}),
            form,
        )
        .await,
        "verify_phone",
    )?;
    let (_, app_token) = app.create_application("fuzz").await;
    let body = ok(
        &post(
            app,
            "/api/v1/tokens/introspect",
            &json!({"auth_token": app_token.expose(), "token": token}),
            form,
        )
        .await,
        "introspect",
    )?;
    prop_assert_eq!(&body["active"], &json!(true));
    let answer = send(
        app,
        Request::delete(format!("/api/v1/tokens/{user_id}.json"))
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(urlencode(json!({"auth_token": token}).as_object().unwrap())))
            .unwrap(),
    )
    .await;
    ok(&answer, "sign out")?;
    Ok(())
}

async fn get_with_bearer(app: &TestApp, path: &str, token: &str) -> Answer {
    send(
        app,
        Request::get(path)
            .header(header::HOST, "localhost")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

async fn post_query(app: &TestApp, path_and_query: &str) -> Answer {
    send(
        app,
        Request::post(path_and_query)
            .header(header::HOST, "localhost")
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

/// Each surface's happy path with random valid numbers, formats, names,
/// devices and encodings, on a fresh service per case.
async fn valid_flows_succeed_for_any_number(backend: TestBackend) {
    let cases = if backend == TestBackend::Sqlite { 12 } else { 4 };
    let handle = tokio::runtime::Handle::current();
    run_cases(cases, flow, |flow| {
        handle.block_on(async {
            let app = spawn_app_with(backend, configure).await;
            run_flow(&app, &flow).await
        })
    });
}

// --- regressions the properties found ---------------------------------------------

/// A correctly signed token naming a user the database does not have: the
/// device's foreign key was refused and the client got a 503.
async fn register_device_for_a_user_that_does_not_exist_is_refused(backend: TestBackend) {
    let app = spawn_app_with(backend, configure).await;
    let now = now_seconds();
    let claims = json!({
        "sub": "42", "user_id": 42, "iat": now, "nbf": now, "exp": now + 1800,
        "iss": "phonegate", "aud": "phonegate:access", "jti": "00",
    });
    let token = jwt(&json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"}), &claims, true);
    let answer = send(
        &app,
        Request::post("/api/v1/auth/register_device")
            .header(header::HOST, "localhost")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"handle": "a", "platform": "fcm"}).to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    assert_eq!(answer.body.unwrap(), json!({"errors": "Unauthorized"}));
}

on_both_backends!(
    random_requests_never_fail_the_server,
    valid_flows_succeed_for_any_number,
    register_device_for_a_user_that_does_not_exist_is_refused,
);
