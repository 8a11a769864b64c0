//! Token introspection (RFC 7662): an application asks what a user's
//! token is.

use super::{
    TokenAuth, Unauthorized,
    credentials::{ApplicationToken, IntrospectedToken},
};
use crate::{
    abuse::{Client, Refusal},
    application::Application,
    ports::StoreError,
    time::Timestamp,
    user::UserId,
};

/// What a token stands for (RFC 7662).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introspection {
    Inactive,
    Active {
        user_id: UserId,
        /// `opaque`, `jwt` or `access_code`.
        token_type: &'static str,
        issued_at: Option<Timestamp>,
        expires_at: Timestamp,
        /// The app_id the token was issued through, if any.
        client_id: Option<String>,
    },
}

/// An application whose `auth_token` was checked just now: what
/// [`TokenAuth::introspect`] takes. Only
/// [`TokenAuth::authorize_application`] makes one.
#[derive(Debug, Clone)]
pub struct AuthorizedApplication {
    application: Application,
}

impl AuthorizedApplication {
    pub fn app_id(&self) -> &str {
        &self.application.app_id
    }
}

/// Why an application may not introspect.
#[derive(Debug, thiserror::Error)]
pub enum IntrospectError {
    /// No application `auth_token` was given.
    #[error("no application token was given")]
    MissingApplicationToken,
    /// No live application has this `auth_token`.
    #[error("no application has this token")]
    UnknownApplicationToken,
    /// The per-IP token-check limit refused it.
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TokenAuth {
    /// `POST /api/v1/tokens/introspect`, first step: the per-IP
    /// token-check limit, then the application's `auth_token`.
    ///
    /// The token is an `Option` on purpose: the limit applies before any
    /// token is looked at, so a client without one is counted (and
    /// throttled) like one with a guessed one.
    pub async fn authorize_application(
        &self,
        app_token: Option<&ApplicationToken>,
        client: &Client,
    ) -> Result<AuthorizedApplication, IntrospectError> {
        self.guard
            .admit_token_check(client, self.now())
            .await
            .map_err(IntrospectError::Refused)?;
        let app_token = app_token.ok_or(IntrospectError::MissingApplicationToken)?;
        let application = self
            .ports
            .applications
            .find_application_by_token(&self.token_hash("application_token", app_token.expose()))
            .await?
            .ok_or(IntrospectError::UnknownApplicationToken)?;
        Ok(AuthorizedApplication { application })
    }

    /// `POST /api/v1/tokens/introspect`: what a user's token stands for,
    /// asked by an application [`TokenAuth::authorize_application`]
    /// authorized.
    pub async fn introspect(
        &self,
        _application: &AuthorizedApplication,
        token: &IntrospectedToken,
    ) -> Result<Introspection, StoreError> {
        let token = token.expose();
        let now = self.now();
        // A JWT has two dots; an access code is 32 hex characters; anything
        // else can only be a session token.
        if token.matches('.').count() == 2 {
            return Ok(match self.ports.tokens.verify(token, now) {
                Ok(claims) => Introspection::Active {
                    user_id: claims.user_id,
                    token_type: "jwt",
                    issued_at: Some(claims.issued_at),
                    expires_at: claims.expires_at,
                    client_id: None,
                },
                Err(_) => Introspection::Inactive,
            });
        }
        if token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hash = self
                .otp
                .hasher()
                .token_hash("access_code", token.to_ascii_lowercase().as_bytes());
            return Ok(match self.ports.access_codes.find_access_code(&hash).await? {
                Some(code) if !code.revoked && now < code.expires_at => Introspection::Active {
                    user_id: code.user_id,
                    token_type: "access_code",
                    issued_at: None,
                    expires_at: code.expires_at,
                    client_id: None,
                },
                _ => Introspection::Inactive,
            });
        }
        Ok(match self.live_session(token).await {
            Ok(session) => Introspection::Active {
                user_id: session.user_id,
                token_type: "opaque",
                issued_at: Some(session.created_at),
                expires_at: session.expires_at,
                client_id: session.application_id,
            },
            Err(Unauthorized::Store(error)) => return Err(error),
            Err(
                Unauthorized::UnknownToken | Unauthorized::Revoked | Unauthorized::Expired | Unauthorized::OtherUser,
            ) => Introspection::Inactive,
        })
    }
}
