//! Users, their addresses and permissions.

use crate::phone::PhoneNumber;

/// A user's id: an integer, as the existing clients expect (`"id": 1831`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(i64);

impl UserId {
    pub const fn new(id: i64) -> Self {
        Self(id)
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

/// A person who signs in. One user per phone number, across every surface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub phone: Option<PhoneNumber>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// A postal address of a user, in the shape the pin-auth clients display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub id: i64,
    pub user_id: UserId,
    pub street: Option<String>,
    pub flat: Option<String>,
    pub building: Option<String>,
    pub district_id: Option<i64>,
    pub address_type: Option<String>,
}

/// The address fields a client may send when signing up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAddress {
    pub street: Option<String>,
    pub flat: Option<String>,
    pub building: Option<String>,
    pub district_id: Option<i64>,
    pub address_type: Option<String>,
}

/// A named permission granted to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub id: i64,
    pub name: String,
}

/// A user with everything the profile endpoints return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    pub user: User,
    pub addresses: Vec<Address>,
    pub permissions: Vec<Permission>,
}

impl UserProfile {
    /// The address the profile points at: the first one the user gave.
    pub fn primary_address(&self) -> Option<&Address> {
        self.addresses.first()
    }
}

/// A user about to be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub phone: PhoneNumber,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub address: Option<NewAddress>,
}

/// An access code to store for whichever user the verified phone has,
/// which the store learns in the same transaction (phone-login's, written
/// by [`crate::ports::UserStore::consume_verifying`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAccessCode {
    pub code_hash: crate::otp::secret::SecretHash,
    pub device_id: String,
    pub expires_at: crate::time::Timestamp,
}

/// What a correct code writes together with consuming its challenge (see
/// [`crate::ports::UserStore::consume_verifying`]): the phone's user marked
/// verified (created if there is none) and, for phone-login, an access code
/// for that user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneVerification {
    pub phone: PhoneNumber,
    pub verified_at: crate::time::Timestamp,
    pub access_code: Option<PendingAccessCode>,
    /// The challenge must carry a pending signup (pin-auth's challenges for
    /// a number with no user): one that has none is a decoy, and is
    /// refused as no longer live, with nothing written.
    pub requires_signup: bool,
}
