//! The tokens surface's response bodies.

use serde::Serialize;
use utoipa::ToSchema;

/// This surface's error body.
#[derive(Serialize, ToSchema)]
#[schema(as = TokensError, example = json!({"error": "Invalid or missing auth_token."}))]
pub(super) struct ErrorBody {
    error: String,
}

/// A success message.
#[derive(Serialize, ToSchema)]
#[schema(as = TokensMessage)]
pub(super) struct MessageBody {
    pub(super) message: &'static str,
}

#[derive(Serialize, ToSchema)]
#[schema(as = TokensSignIn)]
pub(super) struct SignInBody {
    /// The session token: `auth_token` in later requests.
    pub(super) token: String,
    pub(super) user_info: UserInfo,
}

#[derive(Serialize, ToSchema)]
#[schema(as = TokensUserInfo)]
pub(super) struct UserInfo {
    pub(super) id: i64,
    pub(super) first_name: Option<String>,
    pub(super) last_name: Option<String>,
}

/// RFC 7662's answer; only `active` when the token is not.
#[derive(Serialize, ToSchema)]
#[schema(as = TokensIntrospection, example = json!({
    "active": true, "sub": "1", "user_id": 1, "exp": 1_800_000_000, "iat": 1_790_000_000,
    "token_type": "opaque", "client_id": "ios-app"
}))]
pub(super) struct IntrospectionBody {
    active: bool,
    /// The user id as text.
    #[schema(nullable = false)]
    sub: Option<String>,
    #[schema(nullable = false)]
    user_id: Option<i64>,
    /// Expiry, Unix seconds.
    #[schema(nullable = false)]
    exp: Option<i64>,
    /// Issue time, Unix seconds.
    #[schema(nullable = false)]
    iat: Option<i64>,
    /// `opaque`, `jwt` or `access_code`.
    #[schema(nullable = false)]
    token_type: Option<String>,
    /// The application the token was issued through.
    #[schema(nullable = false)]
    client_id: Option<String>,
}
