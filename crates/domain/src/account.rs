//! Email + password accounts: validated emails and passwords.

use std::fmt;

use secrecy::{ExposeSecret as _, SecretString};

/// An email address, trimmed and lower-cased (addresses are matched
/// case-insensitively, as mail providers do in practice).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Why a string is not an email address we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("the email is blank")]
    Blank,
    #[error("the email is not a valid address")]
    Invalid,
}

impl Email {
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(EmailError::Blank);
        }
        let (local, domain) = input.rsplit_once('@').ok_or(EmailError::Invalid)?;
        let valid = input.len() <= 254
            && !local.is_empty()
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !input.chars().any(|c| c.is_whitespace() || c.is_control())
            && !local.contains('@');
        if !valid {
            return Err(EmailError::Invalid);
        }
        Ok(Self(input.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password as a user typed it. Redacted in `Debug`; bounded in length so
/// hashing cost is bounded too.
#[derive(Clone)]
pub struct Password(SecretString);

/// The shortest and longest passwords accepted for new passwords.
pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// Why a text is not a password we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is empty")]
    Blank,
    #[error("the password is shorter than {PASSWORD_MIN_CHARS} characters")]
    TooShort,
    #[error("the password is longer than {PASSWORD_MAX_BYTES} bytes")]
    TooLong,
}

impl Password {
    /// A password offered at sign-in: anything non-blank within the bound
    /// (old passwords may predate today's rules).
    pub fn presented(input: &str) -> Result<Self, PasswordError> {
        if input.is_empty() {
            return Err(PasswordError::Blank);
        }
        if input.len() > PASSWORD_MAX_BYTES {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(SecretString::from(input)))
    }

    /// A new password: also at least 8 characters.
    pub fn new_password(input: &str) -> Result<Self, PasswordError> {
        let password = Self::presented(input)?;
        if input.chars().count() < PASSWORD_MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        Ok(password)
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// A password chosen as a new password: within the bounds and at least
/// [`PASSWORD_MIN_CHARS`] characters long. Whether it is too common needs
/// the password screen, a port, so the use cases check that.
#[derive(Clone)]
pub struct NewPassword(Password);

impl NewPassword {
    pub fn parse(input: &str) -> Result<Self, PasswordError> {
        Password::new_password(input).map(Self)
    }

    pub fn as_password(&self) -> &Password {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword([redacted])")
    }
}

/// A stored password hash (a PHC string such as `$argon2id$v=19$…`).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn new(phc: String) -> Self {
        Self(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse(" Admin@BeyondVIP.com ").unwrap().as_str(),
            "admin@beyondvip.com"
        );
        assert_eq!(Email::parse(""), Err(EmailError::Blank));
        for bad in ["admin", "admin@", "@x.com", "a b@x.com", "a@x", "a@.x.com", "a@x.com."] {
            assert_eq!(Email::parse(bad), Err(EmailError::Invalid), "{bad}");
        }
    }

    #[test]
    fn passwords_have_bounds_and_hide_themselves() {
        assert_eq!(Password::new_password("short").unwrap_err(), PasswordError::TooShort);
        assert!(Password::presented("short").is_ok());
        assert_eq!(Password::presented("").unwrap_err(), PasswordError::Blank);
        assert_eq!(
            Password::presented(&"x".repeat(2000)).unwrap_err(),
            PasswordError::TooLong
        );
        let password = Password::new_password("correct horse").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
        assert_eq!(NewPassword::parse("short").unwrap_err(), PasswordError::TooShort);
        let password = NewPassword::parse("correct horse").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }
}
