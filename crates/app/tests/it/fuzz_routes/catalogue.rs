//! The catalogue of routes the fuzzer knows: every mounted route of the
//! four surfaces and the ops endpoints, with the parameters each reads.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Surface {
    PinAuth,
    PhoneVerify,
    PhoneLogin,
    Tokens,
    Ops,
}

/// A parameter a route reads: a value, or an object of parameters
/// (pin-auth's `user_auth[address_attributes][…]`).
#[derive(Debug)]
pub(super) enum Field {
    Leaf(&'static str),
    Object(&'static str, &'static [Field]),
}

pub(super) use Field::{Leaf, Object};

#[derive(Debug)]
pub(super) struct Route {
    pub(super) surface: Surface,
    /// The methods mounted on the path.
    pub(super) methods: &'static [&'static str],
    /// `{user_id}` is replaced by a random path segment.
    pub(super) path: &'static str,
    /// Whether the path also answers with a `.json` suffix.
    pub(super) json_suffix: bool,
    pub(super) fields: &'static [Field],
}

pub(super) const SIGNUP_FIELDS: &[Field] = &[Object(
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
pub(super) const ROUTES: &[Route] = &[
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

pub(super) const fn route(
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

pub(super) const fn tokens(methods: &'static [&'static str], path: &'static str, fields: &'static [Field]) -> Route {
    Route {
        surface: Surface::Tokens,
        methods,
        path,
        json_suffix: true,
        fields,
    }
}
