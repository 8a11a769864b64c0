//! pin-auth's response bodies, shaped as the seed's examples.

use phonegate_domain::{phone::MobileRule, pin_auth::OtpAuthKey, user::UserProfile};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
#[schema(as = PinAuthOtpAuthKey)]
pub(super) struct OtpAuthKeyBody {
    /// The key to send back with the pin to `verify`; it changes with every new pin.
    #[schema(example = "/JqONEgEjrZefDV3ZIQsNA==")]
    otp_auth_key: String,
}

impl OtpAuthKeyBody {
    pub(super) fn new(key: &OtpAuthKey) -> Self {
        Self {
            otp_auth_key: key.expose().to_owned(),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = PinAuthAddress)]
struct AddressBody {
    id: i64,
    street: Option<String>,
    flat: Option<String>,
    building: Option<String>,
    district_id: Option<i64>,
    addressable_id: i64,
    /// Always `User`.
    addressable_type: &'static str,
}

#[derive(Serialize, ToSchema)]
#[schema(as = PinAuthPermission)]
struct PermissionBody {
    id: i64,
    name: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = PinAuthUserProfile)]
struct UserProfileBody {
    id: i64,
    first_name: Option<String>,
    last_name: Option<String>,
    /// The mobile without its country code, e.g. `98353103`.
    mobile: Option<String>,
    address_id: Option<i64>,
    permission_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = PinAuthProfile)]
pub(super) struct ProfileBody {
    addresses: Vec<AddressBody>,
    permissions: Vec<PermissionBody>,
    user_profile: UserProfileBody,
}

impl ProfileBody {
    /// The profile, its mobile shown as `rule` shows numbers.
    pub(super) fn new(profile: UserProfile, rule: &MobileRule) -> Self {
        let user_profile = UserProfileBody {
            id: profile.user.id.get(),
            first_name: profile.user.first_name.clone(),
            last_name: profile.user.last_name.clone(),
            mobile: profile
                .user
                .phone
                .as_ref()
                .map(|phone| rule.local_part(phone).to_owned()),
            address_id: profile.primary_address().map(|address| address.id),
            permission_id: profile.permissions.first().map(|permission| permission.id),
        };
        Self {
            addresses: profile
                .addresses
                .into_iter()
                .map(|address| AddressBody {
                    id: address.id,
                    street: address.street,
                    flat: address.flat,
                    building: address.building,
                    district_id: address.district_id,
                    addressable_id: address.user_id.get(),
                    addressable_type: "User",
                })
                .collect(),
            permissions: profile
                .permissions
                .into_iter()
                .map(|permission| PermissionBody {
                    id: permission.id,
                    name: permission.name,
                })
                .collect(),
            user_profile,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = PinAuthSession)]
pub(super) struct VerifyBody {
    /// Send it as `Authorization: Bearer <jwt_token>`.
    pub(super) jwt_token: String,
    pub(super) user: ProfileBody,
}
