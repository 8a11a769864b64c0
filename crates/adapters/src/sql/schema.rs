//! Table and column names for sea-query. They mirror the migrations.

use sea_query::Iden;

#[derive(Iden, Clone, Copy)]
pub enum Users {
    Table,
    Id,
    Phone,
    Email,
    FirstName,
    LastName,
    PhoneVerifiedAt,
    PasswordHash,
    CreatedAt,
    FailedSignIns,
    LockedUntil,
}

#[derive(Iden, Clone, Copy)]
pub enum Applications {
    Table,
    Id,
    AppId,
    Name,
    AuthTokenHash,
    CreatedAt,
    RevokedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum SignInDevices {
    Table,
    Id,
    UserId,
    ApplicationId,
    DeviceToken,
    MobileOs,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum SessionTokens {
    Table,
    Id,
    UserId,
    DeviceId,
    ApplicationId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum PasswordResets {
    Table,
    Id,
    UserId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum AccessCodes {
    Table,
    Id,
    UserId,
    CodeHash,
    DeviceId,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum Addresses {
    Table,
    Id,
    UserId,
    Street,
    Flat,
    Building,
    DistrictId,
    AddressType,
    CreatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum Permissions {
    Table,
    Id,
    UserId,
    Name,
}

#[derive(Iden, Clone, Copy)]
pub enum OtpChallenges {
    Table,
    Id,
    Purpose,
    Phone,
    UserId,
    Channel,
    DeviceBinding,
    LookupHash,
    CodeHash,
    Attempts,
    MaxAttempts,
    State,
    CreatedAt,
    ExpiresAt,
    ClosedAt,
    Hosted,
    SentPrefix,
}

#[derive(Iden, Clone, Copy)]
pub enum Devices {
    Table,
    Id,
    UserId,
    Platform,
    PushHandle,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum ServerSecrets {
    Table,
    Name,
    Value,
    CreatedAt,
}

/// Values of `otp_challenges.state`.
pub mod state {
    pub const LIVE: &str = "live";
    pub const CONSUMED: &str = "consumed";
    pub const SUPERSEDED: &str = "superseded";
}

#[derive(Iden, Clone, Copy)]
pub enum Outbox {
    Table,
    Id,
    Kind,
    Purpose,
    State,
    Payload,
    Attempts,
    NextAttemptAt,
    LeaseToken,
    NotAfter,
    CreatedAt,
    FinishedAt,
    LastError,
    ChallengeId,
    Provider,
    #[allow(dead_code, reason = "the delivery receipts of issue 17, built beside this, use it")]
    ProviderMessageId,
    DeliveryStatus,
    #[allow(dead_code, reason = "the delivery receipts of issue 17, built beside this, use it")]
    DeliveryError,
    #[allow(dead_code, reason = "the delivery receipts of issue 17, built beside this, use it")]
    ReceiptAt,
    #[allow(dead_code, reason = "the delivery receipts of issue 17, built beside this, use it")]
    AvoidProvider,
}

#[derive(Iden, Clone, Copy)]
pub enum PendingSignups {
    Table,
    ChallengeId,
    FirstName,
    LastName,
    HasAddress,
    Street,
    Flat,
    Building,
    DistrictId,
    AddressType,
}
