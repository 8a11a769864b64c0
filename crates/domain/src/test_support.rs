//! Shared fixtures for the use cases' unit tests: mockall mocks of every
//! port, the challenge store backed by a small in-test table so flows can be
//! driven end to end (send, then verify).

#![allow(clippy::unwrap_used, reason = "test fixtures")]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use secrecy::{ExposeSecret as _, SecretString};

use crate::{
    delivery::Messenger,
    otp::{
        AttemptOutcome, ChallengeAttempt, ChallengeId, CodeLength, NewChallenge, OtpEngine, OtpPolicy, SecretHasher,
    },
    outbox::{Envelope, Outgoing},
    phone::PhoneNumber,
    phone_login::NewAccessCode,
    ports::{
        MockChallengeStore, MockClock, MockRandomSource, MockSmsSender, MockTokenIssuer, MockUserStore, MockVoiceCaller,
    },
    time::Timestamp,
    token::{AccessClaims, IssuedToken, PhoneSession, TokenError},
    user::{NewUser, User, UserId, UserProfile},
};

#[derive(Debug)]
pub struct Row {
    pub id: i64,
    pub challenge: NewChallenge,
    pub attempts: u32,
    pub closed: bool,
    /// The challenge's message asked a provider to make the code.
    pub hosted: bool,
}

/// What the mocks share: stored challenges, sent messages, users, the time.
#[derive(Default)]
pub struct World {
    pub rows: Mutex<Vec<Row>>,
    /// (channel, to, text) of every message sent.
    pub sent: Mutex<Vec<(&'static str, String, String)>>,
    pub users: Mutex<Vec<User>>,
    pub now: Mutex<i64>,
    /// Decoy outbox rows written.
    pub decoys: Mutex<usize>,
    /// Signups kept pending, by challenge id.
    pub signups: Mutex<Vec<(i64, NewUser)>>,
    /// Access codes written with a consumed challenge.
    pub access_codes: Mutex<Vec<NewAccessCode>>,
}

impl World {
    pub fn new() -> Arc<Self> {
        let world = Arc::new(Self::default());
        *world.now.lock().unwrap() = 1_700_000_000_000;
        world
    }

    pub fn advance(&self, by: Duration) {
        *self.now.lock().unwrap() += by.as_millis() as i64;
    }

    /// The last word of the last message sent (the code, in an SMS).
    pub fn last_code(&self) -> String {
        let sent = self.sent.lock().unwrap();
        let text = &sent.last().expect("a message was sent").2;
        text.rsplit(' ').next().unwrap().to_owned()
    }

    /// What a store does with an outbox entry in these tests: a message is
    /// "delivered" at once into `sent`, a decoy is counted.
    pub fn record(&self, outgoing: Outgoing) {
        let entry = match outgoing {
            Outgoing::Nothing => return,
            Outgoing::Decoy(_) => {
                *self.decoys.lock().unwrap() += 1;
                return;
            }
            Outgoing::Message(message) => match message.envelope {
                Envelope::Sms(sms) => ("sms", sms.to.as_str().to_owned(), sms.body.expose_secret().to_owned()),
                Envelope::WhatsApp(message) => (
                    "whatsapp",
                    message.to.as_str().to_owned(),
                    message.body.expose_secret().to_owned(),
                ),
                Envelope::Call(call) => (
                    "call",
                    call.to.as_str().to_owned(),
                    call.spoken_text.expose_secret().to_owned(),
                ),
                Envelope::Hosted { to, channel, .. } => ("hosted", to.as_str().to_owned(), channel.as_str().to_owned()),
                Envelope::Mail(mail) => (
                    "mail",
                    mail.to.as_str().to_owned(),
                    mail.text_body.expose_secret().to_owned(),
                ),
            },
        };
        self.sent.lock().unwrap().push(entry);
    }

    pub fn sent_count(&self) -> usize {
        self.sent.lock().unwrap().len()
    }

    pub fn add_user(&self, id: i64, phone: &str) {
        self.users.lock().unwrap().push(user(id, phone));
    }
}

pub fn user(id: i64, phone: &str) -> User {
    User {
        id: UserId::new(id),
        phone: Some(PhoneNumber::parse_e164(phone).unwrap()),
        email: None,
        first_name: Some("Reynold".into()),
        last_name: Some("Lakin".into()),
    }
}

pub fn policy(length: usize, ttl_seconds: u64) -> OtpPolicy {
    OtpPolicy {
        length: CodeLength::new(length).unwrap(),
        ttl: Duration::from_secs(ttl_seconds),
        max_attempts: 5,
    }
}

pub fn hasher() -> SecretHasher {
    SecretHasher::new(b"unit-test-key".to_vec())
}

/// A challenge store whose state lives in `world.rows`, honouring the
/// port's contract (supersede, spend, consume).
pub fn challenge_store(world: &Arc<World>) -> MockChallengeStore {
    let mut store = MockChallengeStore::new();
    let w = world.clone();
    store.expect_replace_live().returning(move |challenge, outgoing| {
        let hosted = matches!(
            &outgoing,
            Outgoing::Message(message) | Outgoing::Decoy(message) if matches!(message.envelope, Envelope::Hosted { .. })
        );
        w.record(outgoing);
        let mut rows = w.rows.lock().unwrap();
        for row in rows.iter_mut() {
            if row.challenge.purpose == challenge.purpose && row.challenge.phone == challenge.phone {
                row.closed = true;
            }
        }
        let id = rows.len() as i64 + 1;
        rows.push(Row {
            id,
            challenge,
            attempts: 0,
            closed: false,
            hosted,
        });
        Ok(ChallengeId::new(id))
    });
    let w = world.clone();
    store.expect_spend_attempt().returning(move |lookup, now| {
        let mut rows = w.rows.lock().unwrap();
        let Some(row) = rows.iter_mut().find(|row| row.challenge.lookup_hash == *lookup) else {
            return Ok(AttemptOutcome::NotFound);
        };
        if row.closed {
            return Ok(AttemptOutcome::Closed);
        }
        if now >= row.challenge.expires_at {
            return Ok(AttemptOutcome::Expired);
        }
        if row.attempts >= row.challenge.max_attempts {
            return Ok(AttemptOutcome::Exhausted);
        }
        row.attempts += 1;
        Ok(AttemptOutcome::Spent(ChallengeAttempt {
            id: ChallengeId::new(row.id),
            phone: row.challenge.phone.clone(),
            user_id: row.challenge.user_id,
            device_binding: row.challenge.device_binding.clone(),
            code_hash: row.challenge.code_hash.clone(),
            attempts: row.attempts,
            max_attempts: row.challenge.max_attempts,
            expires_at: row.challenge.expires_at,
            hosted: Some(row.hosted),
            provider: None,
        }))
    });
    let w = world.clone();
    store.expect_consume().returning(move |id, _now| {
        let mut rows = w.rows.lock().unwrap();
        let row = rows.iter_mut().find(|row| row.id == id.get()).unwrap();
        Ok(!std::mem::replace(&mut row.closed, true))
    });
    store
}

pub fn sms(world: &Arc<World>) -> MockSmsSender {
    let mut sms = MockSmsSender::new();
    let w = world.clone();
    sms.expect_send_sms().returning(move |message| {
        w.sent.lock().unwrap().push((
            "sms",
            message.to.as_str().to_owned(),
            message.body.expose_secret().to_owned(),
        ));
        Ok(())
    });
    sms
}

pub fn voice(world: &Arc<World>) -> MockVoiceCaller {
    let mut voice = MockVoiceCaller::new();
    let w = world.clone();
    voice.expect_call().returning(move |call| {
        w.sent.lock().unwrap().push((
            "call",
            call.to.as_str().to_owned(),
            call.spoken_text.expose_secret().to_owned(),
        ));
        Ok(())
    });
    voice
}

pub fn messenger(world: &Arc<World>) -> Messenger {
    Messenger::new(Arc::new(sms(world)), Arc::new(voice(world)), "phonegate".into())
}

/// A user store over `world.users`.
pub fn users(world: &Arc<World>) -> MockUserStore {
    let mut users = MockUserStore::new();
    let w = world.clone();
    users.expect_find_by_phone().returning(move |phone| {
        Ok(w.users
            .lock()
            .unwrap()
            .iter()
            .find(|u| u.phone.as_ref() == Some(phone))
            .cloned())
    });
    let w = world.clone();
    users.expect_profile().returning(move |id| {
        Ok(w.users
            .lock()
            .unwrap()
            .iter()
            .find(|u| u.id == id)
            .map(|user| UserProfile {
                user: user.clone(),
                addresses: vec![],
                permissions: vec![],
            }))
    });
    let w = world.clone();
    users
        .expect_upsert_verified_phone()
        .returning(move |phone, _now| Ok(upsert_user(&w, phone, None)));
    let w = world.clone();
    users
        .expect_store_signup()
        .returning(move |signup, challenge, outgoing| {
            let hosted = matches!(
                &outgoing,
                Outgoing::Message(message) | Outgoing::Decoy(message) if matches!(message.envelope, Envelope::Hosted { .. })
            );
            w.record(outgoing);
            let mut rows = w.rows.lock().unwrap();
            for row in rows.iter_mut() {
                if row.challenge.purpose == challenge.purpose && row.challenge.phone == challenge.phone {
                    row.closed = true;
                }
            }
            let id = rows.len() as i64 + 1;
            rows.push(Row {
                id,
                challenge,
                attempts: 0,
                closed: false,
                hosted,
            });
            w.signups.lock().unwrap().push((id, signup));
            Ok(ChallengeId::new(id))
        });
    let w = world.clone();
    users.expect_consume_verifying().returning(move |id, verification| {
        let has_signup = w
            .signups
            .lock()
            .unwrap()
            .iter()
            .any(|(challenge, _)| *challenge == id.get());
        if verification.requires_signup && !has_signup {
            return Ok(None);
        }
        {
            let mut rows = w.rows.lock().unwrap();
            let row = rows.iter_mut().find(|row| row.id == id.get()).unwrap();
            if std::mem::replace(&mut row.closed, true) {
                return Ok(None);
            }
        }
        let signup = w
            .signups
            .lock()
            .unwrap()
            .iter()
            .find(|(challenge, _)| *challenge == id.get())
            .map(|(_, signup)| signup.clone());
        let (user, created) = upsert_user(&w, &verification.phone, signup);
        if let Some(code) = verification.access_code {
            w.access_codes.lock().unwrap().push(NewAccessCode {
                user_id: user.id,
                code_hash: code.code_hash,
                device_id: code.device_id,
                created_at: verification.verified_at,
                expires_at: code.expires_at,
            });
        }
        Ok(Some((user, created)))
    });
    users
}

/// The user of `phone`, created (with `signup`'s names, if given) if there
/// is none.
fn upsert_user(world: &World, phone: &PhoneNumber, signup: Option<NewUser>) -> (User, bool) {
    let mut users = world.users.lock().unwrap();
    if let Some(user) = users.iter().find(|u| u.phone.as_ref() == Some(phone)) {
        return (user.clone(), false);
    }
    let mut user = user(users.len() as i64 + 100, phone.as_str());
    if let Some(signup) = signup {
        user.first_name = signup.first_name;
        user.last_name = signup.last_name;
    }
    users.push(user.clone());
    (user, true)
}

/// Tokens that are readable strings: `jwt-for-<id>` and
/// `session|<phone>|<nonce>|<expires millis>`.
pub fn tokens() -> MockTokenIssuer {
    let mut tokens = MockTokenIssuer::new();
    tokens.expect_issue().returning(|user, now| {
        Ok(IssuedToken::new(
            SecretString::from(format!("jwt-for-{}", user.get())),
            now.plus(Duration::from_secs(1800)),
        ))
    });
    tokens.expect_verify().returning(|token, now| {
        let id = token
            .strip_prefix("jwt-for-")
            .and_then(|id| id.parse().ok())
            .ok_or(TokenError::Invalid)?;
        Ok(AccessClaims {
            user_id: UserId::new(id),
            issued_at: now,
            expires_at: now.plus(Duration::from_secs(1800)),
            token_id: "jti".into(),
        })
    });
    tokens
        .expect_issue_phone_session()
        .returning(|phone, nonce, _now, expires_at| {
            Ok(IssuedToken::new(
                SecretString::from(format!("session|{phone}|{nonce}|{}", expires_at.unix_millis())),
                expires_at,
            ))
        });
    tokens.expect_verify_phone_session().returning(|token, now| {
        let parts: Vec<&str> = token.split('|').collect();
        let ["session", phone, nonce, expires] = parts[..] else {
            return Err(TokenError::Invalid);
        };
        let expires_at = Timestamp::from_unix_millis(expires.parse().map_err(|_| TokenError::Invalid)?);
        if now >= expires_at {
            return Err(TokenError::Expired);
        }
        Ok(PhoneSession {
            phone: phone.to_owned(),
            nonce: nonce.to_owned(),
            expires_at,
        })
    });
    tokens
}

/// A deterministic stand-in for the CSPRNG (xorshift), so runs repeat.
pub fn random() -> MockRandomSource {
    let state = Mutex::new(0x9E37_79B9_7F4A_7C15u64);
    let mut random = MockRandomSource::new();
    random.expect_fill().returning(move |dest| {
        let mut s = state.lock().unwrap();
        for byte in dest.iter_mut() {
            *s ^= *s << 13;
            *s ^= *s >> 7;
            *s ^= *s << 17;
            *byte = (*s >> 24) as u8;
        }
    });
    random
}

pub fn clock(world: &Arc<World>) -> MockClock {
    let mut clock = MockClock::new();
    let w = world.clone();
    clock
        .expect_now()
        .returning(move || Timestamp::from_unix_millis(*w.now.lock().unwrap()));
    clock
}

/// An engine over the world's challenge table.
pub fn engine(world: &Arc<World>) -> OtpEngine {
    OtpEngine::new(
        Arc::new(challenge_store(world)),
        Arc::new(clock(world)),
        Arc::new(random()),
        hasher(),
    )
}
