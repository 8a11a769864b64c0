//! The phone-login surface (seed `003`): `GET /v1/auth/ping`,
//! `POST /v1/auth/phone_login`, `POST /v1/auth/check_pin`, and
//! `POST /v1/auth/check_access_code` for backends.
//!
//! Every answer is the envelope `{"res_info": {"code", "code_info"},
//! "res_content"?}` with this API's published code table. Parameters come
//! from the query string as documented, or from a form or JSON body. HTTP
//! statuses: 200 for success codes, 400 for missing or invalid parameters,
//! 401 for a refused PIN or access code, 403 for a disallowed Host, 503 when
//! a dependency is down (with phonegate's extension code -500).

use std::sync::Arc;

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse};
use phonegate_domain::{
    phone_login::{LoginStatus, PhoneLogin},
    time::Timestamp,
};
use serde::Serialize;
use serde_json::json;
use utoipa::{OpenApi, ToSchema};

use crate::{
    client::RequestClient,
    hosts::{self, AllowedHosts},
    params::Decoded,
    routes::{MountedRoute, Routes},
};

mod envelope;
mod error;
mod requests;

pub use envelope::Code;
use envelope::Envelope;
use error::ApiError;
use requests::{CheckAccessCodeRequest, CheckPinRequest, PhoneLoginRequest};

fn routes() -> Routes<Arc<PhoneLogin>> {
    Routes::new()
        .get("/v1/auth/ping", ping)
        .post("/v1/auth/phone_login", phone_login_handler)
        .post("/v1/auth/check_pin", check_pin)
        .post("/v1/auth/check_access_code", check_access_code)
}

/// The routes [`router`] mounts.
pub fn mounted() -> Vec<MountedRoute> {
    routes().table().to_vec()
}

pub fn router(phone_login: Arc<PhoneLogin>, hosts: &AllowedHosts) -> Router {
    let router = routes()
        .into_router()
        .with_state(phone_login)
        .method_not_allowed_fallback(|| async {
            Envelope::error(
                StatusCode::METHOD_NOT_ALLOWED,
                Code::InvalidParameter,
                error::METHOD_NOT_ALLOWED,
            )
        });
    hosts::guard(router, hosts, || {
        Envelope::error(StatusCode::FORBIDDEN, Code::InvalidParameter, error::INVALID_HOST).into_response()
    })
}

#[utoipa::path(
    get,
    path = "/v1/auth/ping",
    operation_id = "phone_login_ping",
    tag = TAG,
    summary = "Test the auth API",
    responses(
        (status = 200, description = "`AUTH_ENDPOINT_FUNCTION_SUCCESS` with `pong`", body = PingAnswer),
        (status = 403, description = "The Host is not in `security.allowed_hosts` (`INVALID_PARAMETER`)",
            body = ErrorAnswer),
    )
)]
async fn ping() -> Envelope {
    Envelope::ok(Code::AuthEndpointFunctionSuccess, Some(json!("pong")))
}

#[utoipa::path(
    post,
    path = "/v1/auth/phone_login",
    operation_id = "phone_login_phone_login",
    tag = TAG,
    summary = "Send a login PIN",
    description = "Texts (or, with `call_verify=T`, calls and reads out) a 5-digit PIN bound to the \
        device id, valid for 5 minutes. The parameters go in the query string as documented; a form \
        or JSON body with the same names is read too.",
    params(PhoneLoginRequest),
    responses(
        (status = 200, description = "`NEW_PHONE` (1) for a number without an account, `RETURNING_PHONE` (2) \
            for a known one", body = LoginAnswer),
        (status = 400, description = "A missing parameter (`MISSING_PARAMETER`), an invalid one (`INVALID_PARAMETER`) or \
            an invalid or refused phone number (`INVALID_PHONE`)", body = ErrorAnswer),
        (status = 403, description = "The Host is not in `security.allowed_hosts` (`INVALID_PARAMETER`)",
            body = ErrorAnswer),
        (status = 429, description = "A rate limit or the SMS budget refuses the send (`RATE_LIMITED`, -429)",
            body = ErrorAnswer, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "A dependency is down (`SERVICE_UNAVAILABLE`, -500)", body = ErrorAnswer),
    )
)]
async fn phone_login_handler(
    State(phone_login): State<Arc<PhoneLogin>>,
    RequestClient(client): RequestClient,
    Decoded(request, ..): Decoded<PhoneLoginRequest, ApiError>,
) -> Result<Envelope, ApiError> {
    let request = request.into_domain(phone_login.phones())?;
    Ok(match phone_login.phone_login(request, &client).await? {
        LoginStatus::NewPhone => Envelope::ok(Code::NewPhone, None),
        LoginStatus::ReturningPhone => Envelope::ok(Code::ReturningPhone, None),
    })
}

#[utoipa::path(
    post,
    path = "/v1/auth/check_pin",
    operation_id = "phone_login_check_pin",
    tag = TAG,
    summary = "Exchange the PIN for an access code",
    description = "Checks the PIN for the phone number and device id of the `phone_login` request. A PIN \
        is single use and allows at most 5 wrong tries. Parameters as for `phone_login`.",
    params(CheckPinRequest),
    responses(
        (status = 200, description = "`NEW_ACCESS_CODE` (22) with the access code and its expiry",
            body = NewAccessCodeAnswer),
        (status = 400, description = "A missing or invalid parameter or phone number", body = ErrorAnswer),
        (status = 403, description = "The Host is not in `security.allowed_hosts` (`INVALID_PARAMETER`)",
            body = ErrorAnswer),
        (status = 401, description = "A wrong PIN (`INVALID_PIN`) or an expired one (`PIN_EXPIRED`)",
            body = ErrorAnswer),
        (status = 429, description = "A rate limit refuses the check (`RATE_LIMITED`)", body = ErrorAnswer,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "A dependency is down (`SERVICE_UNAVAILABLE`)", body = ErrorAnswer),
    )
)]
async fn check_pin(
    State(phone_login): State<Arc<PhoneLogin>>,
    RequestClient(client): RequestClient,
    Decoded(request, ..): Decoded<CheckPinRequest, ApiError>,
) -> Result<Envelope, ApiError> {
    let check = request.into_domain(phone_login.phones(), phone_login.pin_length())?;
    let grant = phone_login.check_pin(check, &client).await?;
    Ok(Envelope::ok(
        Code::NewAccessCode,
        Some(json!({"access_code": grant.expose(), "expiry": format_expiry(grant.expires_at)})),
    ))
}

#[utoipa::path(
    post,
    path = "/v1/auth/check_access_code",
    operation_id = "phone_login_check_access_code",
    tag = TAG,
    summary = "Validate an access code (for backends)",
    description = "phonegate's addition for the backends that receive access codes: tells whether a code \
        is valid and whose it is. Parameters as for `phone_login`.",
    params(CheckAccessCodeRequest),
    responses(
        (status = 200, description = "`VALID_ACCESS_CODE` (40) with the user", body = AccessCodeAnswer),
        (status = 400, description = "A missing or invalid parameter", body = ErrorAnswer),
        (status = 403, description = "The Host is not in `security.allowed_hosts` (`INVALID_PARAMETER`)",
            body = ErrorAnswer),
        (status = 401, description = "An unknown code or another device's (`INVALID_ACCESS_CODE`), or an \
            expired one (`EXPIRED_ACCESS_CODE`)", body = ErrorAnswer),
        (status = 429, description = "Too many checks from this client (`RATE_LIMITED`)", body = ErrorAnswer,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The database is unavailable (`SERVICE_UNAVAILABLE`)", body = ErrorAnswer),
    )
)]
async fn check_access_code(
    State(phone_login): State<Arc<PhoneLogin>>,
    RequestClient(client): RequestClient,
    Decoded(request, ..): Decoded<CheckAccessCodeRequest, ApiError>,
) -> Result<Envelope, ApiError> {
    let (code, device) = request.into_domain()?;
    let info = phone_login.check_access_code(code, &device, &client).await?;
    Ok(Envelope::ok(
        Code::ValidAccessCode,
        Some(json!({
            "user_id": info.user_id.get(),
            "phone_number": info.phone.as_ref().map(|p| p.as_str()),
            "expiry": format_expiry(info.expires_at),
        })),
    ))
}

/// The tag of this surface's operations in the OpenAPI spec.
const TAG: &str = "phone-login";

/// This surface's part of the OpenAPI spec.
#[derive(OpenApi)]
#[openapi(paths(ping, phone_login_handler, check_pin, check_access_code))]
pub(crate) struct Doc;

/// The envelope's result code.
#[derive(Serialize, ToSchema)]
#[schema(as = PhoneLoginResInfo)]
struct ResInfo {
    /// The code's number, e.g. 22.
    code: i32,
    /// The code's name, e.g. `NEW_ACCESS_CODE`.
    #[schema(schema_with = code_info_schema)]
    code_info: String,
}

/// The names of [`Code::ALL`], as the schema of `code_info`.
fn code_info_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(Code::ALL.map(Code::name)))
        .build()
}

/// `ping`'s answer.
#[derive(Serialize, ToSchema)]
#[schema(as = PhoneLoginPingAnswer, example = json!({
    "res_info": {"code": 33, "code_info": "AUTH_ENDPOINT_FUNCTION_SUCCESS"}, "res_content": "pong"
}))]
struct PingAnswer {
    res_info: ResInfo,
    /// `pong`.
    res_content: String,
}

/// `phone_login`'s answer: no content.
#[derive(Serialize, ToSchema)]
#[schema(as = PhoneLoginLoginAnswer, example = json!({"res_info": {"code": 1, "code_info": "NEW_PHONE"}}))]
struct LoginAnswer {
    res_info: ResInfo,
}

/// `check_pin`'s answer.
#[derive(Serialize, ToSchema)]
#[schema(as = PhoneLoginNewAccessCodeAnswer)]
struct NewAccessCodeAnswer {
    res_info: ResInfo,
    res_content: NewAccessCode,
}

#[derive(Serialize, ToSchema)]
#[schema(as = PhoneLoginNewAccessCode)]
struct NewAccessCode {
    /// 32 hex characters.
    #[schema(example = "dd3dc3146df82c5a2b1c54eb4648939f")]
    access_code: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    #[schema(example = "2018-09-27 16:56:30")]
    expiry: String,
}

/// `check_access_code`'s answer.
#[derive(Serialize, ToSchema)]
#[schema(as = PhoneLoginAccessCodeAnswer)]
struct AccessCodeAnswer {
    res_info: ResInfo,
    res_content: AccessCodeInfo,
}

#[derive(Serialize, ToSchema)]
#[schema(as = PhoneLoginAccessCodeInfo)]
struct AccessCodeInfo {
    user_id: i64,
    /// E.164.
    phone_number: Option<String>,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    expiry: String,
}

/// An error: the code and a message for people.
#[derive(Serialize, ToSchema)]
#[schema(as = PhoneLoginErrorAnswer, example = json!({
    "res_info": {"code": -1, "code_info": "MISSING_PARAMETER"}, "res_content": "phone_number is required"
}))]
struct ErrorAnswer {
    res_info: ResInfo,
    res_content: String,
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, as the seed shows expiries.
pub fn format_expiry(at: Timestamp) -> String {
    let seconds = at.unix_seconds();
    let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_formatted_like_the_seed() {
        // 2018-09-27 16:56:30 UTC, the seed's example.
        assert_eq!(
            format_expiry(Timestamp::from_unix_millis(1_538_067_390_000)),
            "2018-09-27 16:56:30"
        );
        assert_eq!(format_expiry(Timestamp::from_unix_millis(0)), "1970-01-01 00:00:00");
        assert_eq!(
            format_expiry(Timestamp::from_unix_millis(951_825_600_999)),
            "2000-02-29 12:00:00"
        );
    }
}
