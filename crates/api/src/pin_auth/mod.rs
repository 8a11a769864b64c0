//! The pin-auth surface (seed `001`): `send_pin`, `signup`, `verify`,
//! `current_user_profile` and `register_device` under `/api/v1/auth`.
//!
//! Errors have this API's shape, `{"errors": "<message>"}`: 422 for
//! validation and failed verification, 401 for a missing or bad bearer
//! token, 400 for an unusable body or device, 403 for a Host not allowed,
//! 429 with `Retry-After` when a rate limit or the SMS budget refuses a
//! send or check, 503 when the database or rate limiter is unavailable.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
};
use phonegate_domain::pin_auth::PinAuth;
use utoipa::OpenApi;

use crate::{
    client::RequestClient,
    hosts::{self, AllowedHosts},
    params::Decoded,
    routes::{MountedRoute, Routes},
};

mod error;
mod requests;
mod responses;

pub use error::ApiError;
use error::ErrorBody;
use requests::{RegisterDeviceRequest, SendPinRequest, SignupRequest, VerifyRequest, bearer};
use responses::{OtpAuthKeyBody, ProfileBody, VerifyBody};

fn routes() -> Routes<Arc<PinAuth>> {
    Routes::new()
        .post("/api/v1/auth/send_pin", send_pin)
        .post("/api/v1/auth/signup", signup)
        .post("/api/v1/auth/verify", verify)
        .get("/api/v1/auth/current_user_profile", current_user_profile)
        .post("/api/v1/auth/register_device", register_device)
}

/// The routes [`router`] mounts.
pub fn mounted() -> Vec<MountedRoute> {
    routes().table().to_vec()
}

pub fn router(pin_auth: Arc<PinAuth>, hosts: &AllowedHosts) -> Router {
    let router = routes()
        .into_router()
        .with_state(pin_auth)
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed") });
    hosts::guard(router, hosts, || {
        ApiError::new(StatusCode::FORBIDDEN, "Invalid host").into_response()
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/send_pin",
    operation_id = "pin_auth_send_pin",
    tag = TAG,
    summary = "Send a pin to a known mobile",
    description = "Texts a new 4-digit pin to the mobile if it has an account, and answers with the \
        `otp_auth_key` to send back with it. An unknown mobile gets a random key and no SMS, \
        with the same body and timing. Each new pin cycles the key.",
    request_body(content(
        (SendPinRequest = "application/json"),
        (SendPinRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Sent, or an unknown mobile", body = OtpAuthKeyBody),
        (status = 400, description = "The parameters cannot be read", body = ErrorBody),
        (status = 403, description = "The Host is not in `security.allowed_hosts`", body = ErrorBody,
            example = json!({"errors": "Invalid host"})),
        (status = 422, description = "The mobile is blank, does not match the mobile rule, or is a number \
            phonegate does not send to", body = ErrorBody, example = json!({"errors": "Mobile can't be blank"})),
        (status = 429, description = "A rate limit or the SMS budget refuses the send", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The database or the rate limiter is unavailable", body = ErrorBody),
    )
)]
async fn send_pin(
    State(pin_auth): State<Arc<PinAuth>>,
    RequestClient(client): RequestClient,
    Decoded(request, ..): Decoded<SendPinRequest, ApiError>,
) -> Result<Json<OtpAuthKeyBody>, ApiError> {
    let mobile = request.into_mobile(&pin_auth.settings().mobile_rule)?;
    let key = pin_auth.send_pin(&mobile, &client).await?;
    Ok(Json(OtpAuthKeyBody::new(&key)))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/signup",
    operation_id = "pin_auth_signup",
    tag = TAG,
    summary = "Create a user and send a pin",
    description = "Creates the user with its profile address and texts it a pin. If the mobile already \
        has an account, no user is created: the pin goes to the existing user and the other \
        parameters are ignored. Form clients use Rails keys, e.g. `user_auth[mobile]`.",
    request_body(content(
        (SignupRequest = "application/json"),
        (SignupRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The pin was sent", body = OtpAuthKeyBody),
        (status = 400, description = "The parameters cannot be read", body = ErrorBody),
        (status = 403, description = "The Host is not in `security.allowed_hosts`", body = ErrorBody),
        (status = 422, description = "A missing `user_auth` or `address_attributes`, an invalid mobile, \
            a district that is not a number, or a name too long", body = ErrorBody),
        (status = 429, description = "A rate limit or the SMS budget refuses the send", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The database or the rate limiter is unavailable", body = ErrorBody),
    )
)]
async fn signup(
    State(pin_auth): State<Arc<PinAuth>>,
    RequestClient(client): RequestClient,
    Decoded(request, ..): Decoded<SignupRequest, ApiError>,
) -> Result<Json<OtpAuthKeyBody>, ApiError> {
    let signup = request.into_signup(&pin_auth.settings().mobile_rule)?;
    let key = pin_auth.signup(signup, &client).await?;
    Ok(Json(OtpAuthKeyBody::new(&key)))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/verify",
    operation_id = "pin_auth_verify",
    tag = TAG,
    summary = "Exchange the key and pin for a JWT",
    description = "Checks the pin against the newest `otp_auth_key`. A pin is single use, valid for a \
        limited time, and allows at most 5 wrong tries.",
    request_body(content(
        (VerifyRequest = "application/json"),
        (VerifyRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The pin is right: a JWT and the user", body = VerifyBody),
        (status = 400, description = "The parameters cannot be read", body = ErrorBody),
        (status = 403, description = "The Host is not in `security.allowed_hosts`", body = ErrorBody),
        (status = 422, description = "A missing key or pin, a wrong or expired pin, or too many tries",
            body = ErrorBody),
        (status = 429, description = "A rate limit refuses the check", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "The token could not be signed", body = ErrorBody),
        (status = 503, description = "The database, the rate limiter or the code provider is unavailable",
            body = ErrorBody),
    )
)]
async fn verify(
    State(pin_auth): State<Arc<PinAuth>>,
    RequestClient(client): RequestClient,
    Decoded(request, ..): Decoded<VerifyRequest, ApiError>,
) -> Result<Json<VerifyBody>, ApiError> {
    let (key, pin) = request.into_key_and_pin(pin_auth.settings())?;
    let session = pin_auth.verify(&key, &pin, &client).await?;
    Ok(Json(VerifyBody {
        jwt_token: session.token.expose().to_owned(),
        user: ProfileBody::new(session.profile, &pin_auth.settings().mobile_rule),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/current_user_profile",
    operation_id = "pin_auth_current_user_profile",
    tag = TAG,
    summary = "The signed-in user",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's addresses, permissions and profile", body = ProfileBody),
        (status = 401, description = "No, an invalid or an expired bearer token", body = ErrorBody,
            example = json!({"errors": "Unauthorized"})),
        (status = 403, description = "The Host is not in `security.allowed_hosts`", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
async fn current_user_profile(
    State(pin_auth): State<Arc<PinAuth>>,
    headers: HeaderMap,
) -> Result<Json<ProfileBody>, ApiError> {
    let signed_in = pin_auth.authenticate(&bearer(&headers)?)?;
    let profile = pin_auth.current_user_profile(signed_in).await?;
    Ok(Json(ProfileBody::new(profile, &pin_auth.settings().mobile_rule)))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/register_device",
    operation_id = "pin_auth_register_device",
    tag = TAG,
    summary = "Register the device's push handle",
    description = "Keeps the push registration (handle and platform) of the signed-in user's device; \
        registering the same handle again updates it.",
    security(("bearer" = [])),
    request_body(content(
        (RegisterDeviceRequest = "application/json"),
        (RegisterDeviceRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "Registered"),
        (status = 400, description = "The parameters cannot be read, or the handle or platform is invalid",
            body = ErrorBody),
        (status = 401, description = "No, an invalid or an expired bearer token", body = ErrorBody),
        (status = 403, description = "The Host is not in `security.allowed_hosts`", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
async fn register_device(
    State(pin_auth): State<Arc<PinAuth>>,
    headers: HeaderMap,
    Decoded(request, ..): Decoded<RegisterDeviceRequest, ApiError>,
) -> Result<StatusCode, ApiError> {
    // The token is checked before the handle and platform, as the
    // original did: a client without a valid token learns nothing more.
    let signed_in = pin_auth.authenticate(&bearer(&headers)?)?;
    let (handle, platform) = request.into_registration()?;
    pin_auth.register_device(signed_in, &handle, platform).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tag of this surface's operations in the OpenAPI spec.
const TAG: &str = "pin-auth";

/// This surface's part of the OpenAPI spec.
#[derive(OpenApi)]
#[openapi(paths(send_pin, signup, verify, current_user_profile, register_device))]
pub(crate) struct Doc;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use phonegate_domain::{
        otp::{CodeLength, OtpPolicy},
        phone::MobileRule,
        pin_auth::PinAuthSettings,
    };
    use serde_json::{Value, json};

    use super::*;
    use crate::openapi::spec_accepts;

    fn settings() -> PinAuthSettings {
        PinAuthSettings {
            mobile_rule: MobileRule::hong_kong(),
            policy: OtpPolicy {
                length: CodeLength::new(4).expect("a valid length"),
                ttl: Duration::from_secs(600),
                max_attempts: 5,
            },
        }
    }

    /// The request as [`Params::decode`](crate::params::Params::decode)
    /// reads it from the merged parameters.
    fn decode<T: serde::de::DeserializeOwned>(value: &Value) -> T {
        serde_json::from_value(value.clone()).expect("every field reads any value")
    }

    /// What the spec calls a valid request, the edge accepts, and what the
    /// spec refuses, the edge refuses: the spec states the edge's checks.
    #[test]
    fn the_spec_states_what_the_edge_enforces() {
        let settings = settings();
        let long = "a".repeat(256);
        let send_pin = [(json!({"mobile": "+85261677528"}), true), (json!({}), false)];
        for (request, valid) in send_pin {
            assert_eq!(spec_accepts("PinAuthSendPinRequest", &request), valid, "{request}");
            let edge = decode::<SendPinRequest>(&request).into_mobile(&settings.mobile_rule);
            assert_eq!(edge.is_ok(), valid, "{request}");
        }
        let signup = [
            (
                json!({"user_auth": {"mobile": "+85251224538", "first_name": "Jake", "last_name": "Deamon",
                    "address_attributes": {"district_id": "1", "address_type": "Profile"}}}),
                true,
            ),
            (
                json!({"user_auth": {"mobile": "+85251224538", "address_attributes": {"district_id": 3}}}),
                true,
            ),
            (json!({}), false),
            (json!({"user_auth": {"mobile": "+85251224538"}}), false),
            (json!({"user_auth": {"address_attributes": {}}}), false),
            (
                json!({"user_auth": {"mobile": "+85251224538", "first_name": long, "address_attributes": {}}}),
                false,
            ),
            (
                json!({"user_auth": {"mobile": "+85251224538", "address_attributes": {"street": long}}}),
                false,
            ),
            (
                json!({"user_auth": {"mobile": "+85251224538", "address_attributes": {"district_id": "north"}}}),
                false,
            ),
        ];
        for (request, valid) in signup {
            assert_eq!(spec_accepts("PinAuthSignupRequest", &request), valid, "{request}");
            let edge = decode::<SignupRequest>(&request).into_signup(&settings.mobile_rule);
            assert_eq!(edge.is_ok(), valid, "{request}");
        }
        let key = "/JqONEgEjrZefDV3ZIQsNA==";
        let verify = [
            (json!({"otp_auth_key": key, "pin": "1234"}), true),
            (json!({"otp_auth_key": key, "pin": 1234}), true),
            (json!({"otp_auth_key": "AAAAAAAAAAAAAAAAAAAAAA==", "pin": "0000"}), true),
            (json!({"otp_auth_key": key}), false),
            (json!({"pin": "1234"}), false),
            (json!({"otp_auth_key": "", "pin": "1234"}), false),
            (json!({"otp_auth_key": "garbage", "pin": "1234"}), false),
            // The last character before the padding carries 2 unused bits.
            (
                json!({"otp_auth_key": "/JqONEgEjrZefDV3ZIQsNB==", "pin": "1234"}),
                false,
            ),
            (json!({"otp_auth_key": key, "pin": "12a4"}), false),
            (json!({"otp_auth_key": key, "pin": 12}), false),
        ];
        for (request, valid) in verify {
            assert_eq!(spec_accepts("PinAuthVerifyRequest", &request), valid, "{request}");
            let edge = decode::<VerifyRequest>(&request).into_key_and_pin(&settings);
            assert_eq!(edge.is_ok(), valid, "{request}");
        }
        let register = [
            (json!({"handle": "fcm-registration-id", "platform": "fcm"}), true),
            (json!({"handle": "h", "platform": "aps"}), true),
            (json!({"handle": "h", "platform": "wns"}), false),
            (json!({"handle": " ", "platform": "fcm"}), false),
            (json!({"platform": "fcm"}), false),
            (json!({"handle": "h"}), false),
            (json!({"handle": "h".repeat(4097), "platform": "gcm"}), false),
        ];
        for (request, valid) in register {
            assert_eq!(
                spec_accepts("PinAuthRegisterDeviceRequest", &request),
                valid,
                "{request}"
            );
            let edge = decode::<RegisterDeviceRequest>(&request).into_registration();
            assert_eq!(edge.is_ok(), valid, "{request}");
        }
    }
}
