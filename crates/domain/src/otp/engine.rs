//! The engine that issues and checks codes for every surface.

use std::{
    fmt,
    sync::{Arc, atomic::Ordering},
};

use super::{
    code::{ChallengeId, Channel, CodeLength, OtpCode, OtpPolicy, Purpose},
    secret::{LookupKey, SecretHash, SecretHasher},
    test_numbers::TestNumbers,
};
use crate::{
    abuse::{
        Client, Refusal, SendAttempt, SendGuard, calling_code, phone_lockout::PhoneLockout, pumping::PumpingGuard,
    },
    delivery::Messenger,
    outbox::Outgoing,
    phone::PhoneNumber,
    ports::{
        AttemptOutcome, ChallengeStore, Clock, DeliveryError, HostedCheck, HostedVerification, Metrics, NewChallenge,
        NoMetrics, RandomSource, StoreError,
    },
    time::Timestamp,
    user::UserId,
};

/// A challenge whose code matched and which this check consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChallenge {
    pub id: ChallengeId,
    pub phone: PhoneNumber,
    pub user_id: Option<UserId>,
    pub device_binding: Option<String>,
}

/// Why a code was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("no live challenge matches")]
    NotFound,
    #[error("the code is wrong ({remaining} attempts left)")]
    WrongCode { remaining: u32 },
    #[error("the challenge has expired")]
    Expired,
    #[error("every attempt on the challenge was used")]
    Exhausted,
    #[error("the challenge was already used or replaced by a newer one")]
    Closed,
    /// The number had too many wrong codes and is locked out: the code was
    /// not compared. Surfaces answer it exactly as a wrong code, so that a
    /// guesser cannot tell.
    #[error("the phone number is locked after too many wrong codes")]
    Locked,
    /// The client checked too many codes (per-IP limit).
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The provider that checks codes (Twilio Verify) could not answer.
    #[error("the verification provider failed: {0}")]
    Provider(DeliveryError),
}

/// A code that was issued, to be delivered, with when it stops working.
#[derive(Debug)]
pub struct IssuedCode {
    pub purpose: Purpose,
    pub code: OtpCode,
    pub expires_at: Timestamp,
    /// The number is a configured test number: the code is its fixed code
    /// and nothing may be sent.
    pub test_number: bool,
    /// Finds the stored challenge again (to close it if delivery fails).
    pub lookup_hash: SecretHash,
}

/// The request to issue a code.
#[derive(Debug, Clone)]
pub struct IssueRequest<'a> {
    pub purpose: Purpose,
    pub phone: &'a PhoneNumber,
    pub user_id: Option<UserId>,
    pub channel: Channel,
    pub device_binding: Option<String>,
    pub lookup: &'a LookupKey,
    pub policy: &'a OtpPolicy,
    pub client: &'a Client,
}

/// Why a code was not issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// A rate limit, the SMS budget or the destination rules refused it.
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Refusal> for IssueError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Store(error) => Self::Store(error),
            refusal => Self::Refused(refusal),
        }
    }
}

/// Issues and checks one-time codes for every surface.
#[derive(Clone)]
pub struct OtpEngine {
    challenges: Arc<dyn ChallengeStore>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn RandomSource>,
    hasher: SecretHasher,
    test_numbers: Arc<TestNumbers>,
    /// Set when a provider generates and checks codes (Twilio Verify):
    /// every code this instance sends, or only those of challenges another
    /// instance (of a fleet mid-switch) sent through it.
    hosted: Option<Arc<dyn HostedVerification>>,
    /// Whether this instance's own codes are the provider's: how a
    /// challenge that does not record who made its code is checked.
    hosted_decoys: bool,
    /// Rate limits and the SMS budget; `None` only in unit tests of other
    /// rules.
    guard: Option<SendGuard>,
    /// Where the outcome of every check is counted.
    metrics: Arc<dyn Metrics>,
    /// The cap on wrong codes per phone number; `None` when turned off.
    lockout: Option<PhoneLockout>,
    /// Holds sends to prefixes whose codes are not verified, and names the
    /// prefix each challenge is counted under; `None` in unit tests of
    /// other rules (challenges then count under their calling code).
    pumping: Option<PumpingGuard>,
}

impl fmt::Debug for OtpEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpEngine").finish_non_exhaustive()
    }
}

impl OtpEngine {
    pub fn new(
        challenges: Arc<dyn ChallengeStore>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn RandomSource>,
        hasher: SecretHasher,
    ) -> Self {
        Self {
            challenges,
            clock,
            random,
            hasher,
            test_numbers: Arc::default(),
            hosted: None,
            hosted_decoys: false,
            guard: None,
            metrics: Arc::new(NoMetrics),
            lockout: None,
            pumping: None,
        }
    }

    /// The same engine, counting the outcome of every check in `metrics`.
    pub fn with_metrics(self, metrics: Arc<dyn Metrics>) -> Self {
        Self { metrics, ..self }
    }

    /// The same engine, with `hosted` generating and checking the codes.
    /// Challenges are still recorded here, so attempt limits, expiry and
    /// single use hold exactly as with local codes; test numbers are still
    /// checked locally and never reach the provider.
    pub fn with_hosted(self, hosted: Arc<dyn HostedVerification>) -> Self {
        Self {
            hosted: Some(hosted),
            hosted_decoys: true,
            ..self
        }
    }

    /// The same engine, making its own codes but able to check those that
    /// `hosted` made for challenges another instance issued (a fleet in
    /// the middle of a switch to or from Twilio Verify). Decoys are
    /// compared here, as this instance's own codes are.
    pub fn with_hosted_checks(self, hosted: Arc<dyn HostedVerification>) -> Self {
        Self {
            hosted: Some(hosted),
            hosted_decoys: false,
            ..self
        }
    }

    /// The same engine, with `guard` deciding who may send and check codes.
    pub fn with_guard(self, guard: SendGuard) -> Self {
        Self {
            guard: Some(guard),
            ..self
        }
    }

    /// The same engine, locking out numbers with too many wrong codes
    /// (see [`PhoneLockout`]); `None` leaves the lockout off.
    pub fn with_lockout(self, lockout: Option<PhoneLockout>) -> Self {
        Self { lockout, ..self }
    }

    /// The same engine, with `pumping` holding sends to prefixes whose
    /// codes are not verified.
    pub fn with_pumping(self, pumping: PumpingGuard) -> Self {
        Self {
            pumping: Some(pumping),
            ..self
        }
    }

    /// The same engine, treating `test_numbers` as test numbers.
    pub fn with_test_numbers(self, test_numbers: Arc<TestNumbers>) -> Self {
        Self { test_numbers, ..self }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn hasher(&self) -> &SecretHasher {
        &self.hasher
    }

    /// `len` bytes from the CSPRNG.
    pub fn random_bytes(&self, len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        self.random.fill(&mut bytes);
        bytes
    }

    /// A uniformly random code of `length` digits. Rejection sampling keeps
    /// every code equally likely (a plain `% 10^n` would favour low codes).
    pub fn new_code(&self, length: CodeLength) -> OtpCode {
        let modulus = 10u64.pow(length.get() as u32);
        let limit = u64::MAX - (u64::MAX % modulus);
        let value = loop {
            let mut bytes = [0u8; 8];
            self.random.fill(&mut bytes);
            let candidate = u64::from_be_bytes(bytes);
            if candidate < limit {
                break candidate % modulus;
            }
        };
        OtpCode(format!("{value:0width$}", width = length.get()))
    }

    /// Builds the challenge for `request` without storing it.
    fn prepare(&self, request: &IssueRequest<'_>) -> (NewChallenge, IssuedCode) {
        let now = self.clock.now();
        let test_code = self.test_numbers.code_for(request.phone, request.policy.length);
        let test_number = test_code.is_some();
        if test_number {
            let uses = self.test_numbers.uses.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(
                purpose = request.purpose.as_str(),
                phone = %request.phone,
                uses,
                "test number: fixed code issued, nothing will be sent"
            );
        }
        let code = test_code.unwrap_or_else(|| self.new_code(request.policy.length));
        let lookup_hash = self.hasher.lookup_hash(request.purpose, request.lookup);
        let code_hash = self.hasher.code_hash(&lookup_hash, &code);
        let expires_at = now.plus(request.policy.ttl);
        let challenge = NewChallenge {
            purpose: request.purpose,
            phone: request.phone.clone(),
            user_id: request.user_id,
            channel: request.channel,
            device_binding: request.device_binding.clone(),
            lookup_hash,
            code_hash,
            max_attempts: request.policy.max_attempts,
            created_at: now,
            expires_at,
            // Test numbers send nothing, so they count neither as sends
            // nor towards conversion; decoys clear it where they are made.
            sent_prefix: (!test_number).then(|| match &self.pumping {
                Some(pumping) => pumping.prefix_of(request.phone),
                None => calling_code(request.phone).to_owned(),
            }),
        };
        let issued = IssuedCode {
            purpose: request.purpose,
            code,
            expires_at,
            test_number,
            lookup_hash: challenge.lookup_hash.clone(),
        };
        (challenge, issued)
    }

    /// Asks the guard whether `request` may send a code. Test numbers
    /// receive nothing and serve load tests, so no limit applies to them.
    async fn admit(&self, request: &IssueRequest<'_>) -> Result<(), IssueError> {
        if self.test_numbers.contains(request.phone) {
            return Ok(());
        }
        // The pumping guard first: it only reads, so a send it holds
        // spends nothing of the rate limits and budgets.
        if let Some(pumping) = &self.pumping {
            pumping.admit(request.phone, self.clock.now()).await?;
        }
        let Some(guard) = &self.guard else {
            return Ok(());
        };
        let attempt = SendAttempt {
            purpose: request.purpose,
            phone: request.phone,
            channel: request.channel,
            client: request.client,
        };
        Ok(guard.admit_send(attempt, self.clock.now()).await?)
    }

    /// Asks the guard whether an email may be sent to `to` for `client`.
    pub async fn admit_mail(&self, to: &crate::account::Email, client: &Client) -> Result<(), IssueError> {
        match &self.guard {
            Some(guard) => Ok(guard.admit_mail(to, client, self.clock.now()).await?),
            None => Ok(()),
        }
    }

    /// Stores a new challenge, superseding any live one for the same purpose
    /// and phone, with its message queued in the same transaction, and
    /// returns the code.
    pub async fn issue(&self, request: IssueRequest<'_>, messenger: &Messenger) -> Result<IssuedCode, IssueError> {
        self.admit(&request).await?;
        let (mut challenge, issued) = self.prepare(&request);
        let mut outgoing = messenger.compose(request.phone, request.channel, &issued, challenge.created_at);
        self.decoy_if_locked(request.phone, &mut challenge, &mut outgoing)
            .await?;
        self.challenges.replace_live(challenge, outgoing).await?;
        Ok(issued)
    }

    /// Builds a challenge for `request`, with its message, for the caller to
    /// store in its own transaction (e.g. together with a new user).
    pub async fn issue_unstored(
        &self,
        request: IssueRequest<'_>,
        messenger: &Messenger,
    ) -> Result<(NewChallenge, Outgoing, IssuedCode), IssueError> {
        self.admit(&request).await?;
        let (mut challenge, issued) = self.prepare(&request);
        let mut outgoing = messenger.compose(request.phone, request.channel, &issued, challenge.created_at);
        self.decoy_if_locked(request.phone, &mut challenge, &mut outgoing)
            .await?;
        Ok((challenge, outgoing, issued))
    }

    /// Turns the challenge and message for a locked-out number into a decoy
    /// (no code that can match, a message that is never sent), so the send
    /// is answered as usual, costs nothing, and does not tell a guesser
    /// that the number is locked. Test numbers send nothing anyway, and no
    /// send limit applies to them, so neither does this.
    async fn decoy_if_locked(
        &self,
        phone: &PhoneNumber,
        challenge: &mut NewChallenge,
        outgoing: &mut Outgoing,
    ) -> Result<(), IssueError> {
        let Some(lockout) = &self.lockout else {
            return Ok(());
        };
        if self.test_numbers.contains(phone) || !lockout.is_locked(phone, self.clock.now()).await? {
            return Ok(());
        }
        challenge.code_hash = SecretHash::from_bytes(Vec::new());
        challenge.sent_prefix = None;
        *outgoing = match std::mem::replace(outgoing, Outgoing::Nothing) {
            Outgoing::Message(message) => Outgoing::Decoy(message),
            other => other,
        };
        Ok(())
    }

    /// Stores a challenge that has no code at all (an empty code hash), with
    /// a decoy outbox row, so a request for an unknown number does the same
    /// store work (and meets the same limits) as one for a known number
    /// without anything being sent, and no guess can ever match it.
    pub async fn issue_decoy(&self, request: IssueRequest<'_>, messenger: &Messenger) -> Result<(), IssueError> {
        self.admit(&request).await?;
        let (mut challenge, never_sent) = self.prepare(&IssueRequest {
            user_id: None,
            ..request
        });
        challenge.code_hash = SecretHash::from_bytes(Vec::new());
        challenge.sent_prefix = None;
        let mut decoy = match messenger.compose(request.phone, request.channel, &never_sent, challenge.created_at) {
            Outgoing::Message(message) => Outgoing::Decoy(message),
            other => other,
        };
        // Nothing to change, but the same look-up as for a known number,
        // so that the two take the same time.
        self.decoy_if_locked(request.phone, &mut challenge, &mut decoy).await?;
        self.challenges.replace_live(challenge, decoy).await?;
        Ok(())
    }

    /// Checks `code` against the live challenge found by `lookup`. One
    /// attempt is spent first, so the attempt limit holds under concurrency,
    /// and only one concurrent check of the right code can consume it. If
    /// `device` is given, the challenge must be bound to that device too; a
    /// mismatch counts as a wrong code.
    pub async fn check(
        &self,
        purpose: Purpose,
        lookup: &LookupKey,
        code: &OtpCode,
        device: Option<&str>,
        client: &Client,
    ) -> Result<VerifiedChallenge, CheckError> {
        let now = self.clock.now();
        let challenges = &self.challenges;
        self.check_then(purpose, lookup, code, device, client, |verified| async move {
            Ok::<_, StoreError>(challenges.consume(verified.id, now).await?.then_some(verified))
        })
        .await
    }

    /// Like [`OtpEngine::check`], except that the matching challenge is
    /// consumed by `consume`, which must consume it only if it is still
    /// live, together with whatever the verification writes, in one
    /// transaction, and answer `None` (having written nothing) when it was
    /// no longer live. So a write that fails leaves the code usable, and a
    /// code is never spent without its effect.
    pub async fn check_then<T, F, Fut>(
        &self,
        purpose: Purpose,
        lookup: &LookupKey,
        code: &OtpCode,
        device: Option<&str>,
        client: &Client,
        consume: F,
    ) -> Result<T, CheckError>
    where
        F: FnOnce(VerifiedChallenge) -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, StoreError>>,
    {
        let result = match self.check_uncounted(purpose, lookup, code, device, client).await {
            Ok((matched, provider)) => match consume(matched.clone()).await {
                Ok(Some(value)) => {
                    // Test numbers send nothing, so their checks are no
                    // conversion.
                    if !self.test_numbers.contains(&matched.phone) {
                        self.metrics
                            .code_verified(provider.as_deref().unwrap_or("none"), calling_code(&matched.phone));
                    }
                    Ok(value)
                }
                // Another check consumed it first, or a newer code
                // superseded it, after this attempt was spent.
                Ok(None) => Err(CheckError::Closed),
                Err(error) => Err(CheckError::Store(error)),
            },
            Err(error) => Err(error),
        };
        let outcome = match &result {
            Ok(_) => "verified",
            Err(CheckError::WrongCode { .. }) => "wrong_code",
            Err(CheckError::NotFound) => "not_found",
            Err(CheckError::Expired) => "expired",
            Err(CheckError::Exhausted) => "exhausted",
            Err(CheckError::Closed) => "closed",
            Err(CheckError::Locked) => "locked",
            Err(CheckError::Refused(_)) => "refused",
            Err(CheckError::Store(_) | CheckError::Provider(_)) => "error",
        };
        self.metrics.code_check(purpose.as_str(), outcome);
        result
    }

    /// Spends an attempt and compares the code; the matching challenge is
    /// returned still live, for the caller to consume.
    async fn check_uncounted(
        &self,
        purpose: Purpose,
        lookup: &LookupKey,
        code: &OtpCode,
        device: Option<&str>,
        client: &Client,
    ) -> Result<(VerifiedChallenge, Option<String>), CheckError> {
        let now = self.clock.now();
        if let Some(guard) = &self.guard {
            guard.admit_check(client, now).await.map_err(|refusal| match refusal {
                Refusal::Store(error) => CheckError::Store(error),
                refusal => CheckError::Refused(refusal),
            })?;
        }
        let lookup_hash = self.hasher.lookup_hash(purpose, lookup);
        let attempt = match self.challenges.spend_attempt(&lookup_hash, now).await? {
            AttemptOutcome::Spent(attempt) => attempt,
            AttemptOutcome::NotFound => return Err(CheckError::NotFound),
            AttemptOutcome::Expired => return Err(CheckError::Expired),
            AttemptOutcome::Exhausted => return Err(CheckError::Exhausted),
            AttemptOutcome::Closed => return Err(CheckError::Closed),
        };
        // The number is known only now (pin-auth's key does not name it).
        // A locked number's code is not compared at all, right or wrong;
        // the attempt spent stays spent, as for a wrong code.
        if let Some(lockout) = &self.lockout
            && lockout.is_locked(&attempt.phone, now).await?
        {
            lockout.pace_refusal(&attempt.phone, now).await;
            return Err(CheckError::Locked);
        }
        let device_matches = device.is_none_or(|device| attempt.device_binding.as_deref() == Some(device));
        let decoy = attempt.code_hash.as_bytes().is_empty();
        // Whoever issued the code checks it: a code the provider made goes
        // to the provider, one phonegate made is compared here, whichever
        // instance (with whichever providers) serves the check. A
        // challenge from before this was recorded is checked as this
        // instance's mode says. A decoy takes the path of the code it
        // stands in for, so its answer and timing are those of a wrong
        // code for a known number; it never matches.
        let by_provider = attempt.hosted.unwrap_or(self.hosted_decoys);
        let code_matches = match &self.hosted {
            // A check from the wrong device never reaches the provider.
            _ if !device_matches => false,
            Some(hosted) if by_provider && decoy => {
                let _ = hosted.check(&attempt.phone, code).await.map_err(CheckError::Provider)?;
                false
            }
            _ if decoy && !by_provider => false,
            // Test numbers never reach the provider.
            _ if self.test_numbers.contains(&attempt.phone) => {
                self.hasher.code_hash(&lookup_hash, code).ct_eq(&attempt.code_hash)
            }
            Some(hosted) if by_provider => {
                match hosted.check(&attempt.phone, code).await.map_err(CheckError::Provider)? {
                    HostedCheck::Approved => true,
                    HostedCheck::Rejected => false,
                    // The provider has no pending code: it expired there or
                    // was used up by its own attempt limit.
                    HostedCheck::NotFound => return Err(CheckError::Expired),
                }
            }
            None if by_provider => {
                tracing::error!(
                    challenge = attempt.id.get(),
                    "a code made by Twilio Verify reached an instance that cannot reach Verify; set \
                     twilio.verify_service_sid to check it here"
                );
                return Err(CheckError::Provider(DeliveryError::Misconfigured(
                    "no hosted verification provider to check a code it made".into(),
                )));
            }
            _ => self.hasher.code_hash(&lookup_hash, code).ct_eq(&attempt.code_hash),
        };
        if !(code_matches && device_matches) {
            // Only a code that was compared and wrong counts towards the
            // lockout: a check of an unknown, expired or used-up challenge
            // tests no code, so it cannot bring a takeover closer.
            if let Some(lockout) = &self.lockout
                && lockout.record_failure(purpose, &attempt.phone, now).await
            {
                self.metrics.phone_locked(purpose.as_str());
            }
            return Err(CheckError::WrongCode {
                remaining: attempt.max_attempts.saturating_sub(attempt.attempts),
            });
        }
        // The right code starts the number's count of wrong codes over
        // (whether or not a concurrent check consumes the challenge first:
        // either way its holder has the code).
        if let Some(lockout) = &self.lockout {
            lockout.record_success(&attempt.phone).await;
        }
        let verified = VerifiedChallenge {
            id: attempt.id,
            phone: attempt.phone,
            user_id: attempt.user_id,
            device_binding: attempt.device_binding,
        };
        Ok((verified, attempt.provider))
    }
}
