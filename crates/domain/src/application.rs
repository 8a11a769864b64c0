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
    pub auth_token_hash: crate::otp::SecretHash,
    pub created_at: crate::time::Timestamp,
}
