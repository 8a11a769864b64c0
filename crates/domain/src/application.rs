//! Applications: the client apps and servers that call phonegate.

/// A registered application. Users sign in "from" an application (its
/// `app_id`), and servers authenticate as one with its `auth_token`, which is
/// stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub id: i64,
    pub app_id: String,
    pub name: String,
}

/// An application to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApplication {
    pub app_id: String,
    pub name: String,
    pub auth_token_hash: crate::otp::secret::SecretHash,
    pub created_at: crate::time::Timestamp,
}

/// A registered application as the admin CLI lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationListing {
    pub application: Application,
    pub created_at: crate::time::Timestamp,
    /// When it was revoked; its `auth_token` and its users' session tokens
    /// stopped working then.
    pub revoked_at: Option<crate::time::Timestamp>,
}

/// What revoking an application did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// The application is revoked now, with this many live session tokens
    /// issued through it.
    Revoked { session_tokens: u64 },
    /// It had been revoked before; nothing changed.
    AlreadyRevoked,
    /// No application has that `app_id`.
    NotFound,
}
