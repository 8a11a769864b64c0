//! Outbox payloads: the recipient and text of each message (with its
//! code or reset link), sealed with ChaCha20-Poly1305 under a key derived
//! from the server secret, so the table holds no live code in the clear.

use std::{fmt, sync::Arc};

use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit as _, Nonce,
    aead::{Aead as _, Payload},
};
use phonegate_domain::{
    StoreError,
    account::Email,
    otp::Channel,
    outbox::Envelope,
    phone::PhoneNumber,
    ports::{OutgoingCall, OutgoingMail, OutgoingSms, RandomSource as _},
};
use secrecy::{ExposeSecret as _, SecretBox, SecretString};
use serde::{Deserialize, Serialize};

use crate::random::OsRandom;

/// Seals and opens outbox payloads. `Debug` shows no key.
#[derive(Clone)]
pub struct Sealer {
    key: Arc<SecretBox<[u8; 32]>>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            key: Arc::new(SecretBox::new(Box::new(key))),
        }
    }

    /// A key of this process only: rows it seals cannot be read by another
    /// process. For tests and tools; the service derives its key from the
    /// configured secret so that every instance can read every row.
    pub fn ephemeral() -> Self {
        let mut key = [0u8; 32];
        OsRandom.fill(&mut key);
        Self::new(key)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(self.key.expose_secret().into())
    }

    /// A fresh nonce, then the ciphertext; the kind is bound as associated
    /// data so a row's payload cannot be moved to a row of another kind.
    pub(super) fn seal(&self, kind: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; 12];
        OsRandom.fill(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: kind.as_bytes(),
                },
            )
            .map_err(|_| StoreError::new("seal_outbox_payload", "could not seal an outbox payload"))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    pub(super) fn open(&self, kind: &str, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let truncated = || StoreError::new("open_outbox_payload", "an outbox payload is truncated");
        let (nonce, body) = sealed.split_at_checked(12).ok_or_else(truncated)?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| truncated())?;
        self.cipher()
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: body,
                    aad: kind.as_bytes(),
                },
            )
            .map_err(|_| {
                StoreError::new(
                    "open_outbox_payload",
                    "an outbox payload does not open with this server's key",
                )
            })
    }
}

/// The stored form of an envelope, before sealing. Deliberately not `Debug`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(super) enum StoredEnvelope {
    Sms {
        to: String,
        body: String,
    },
    Call {
        to: String,
        text: String,
    },
    /// Named as its row's kind; rows of the other kinds are unchanged, so
    /// every row written before WhatsApp still opens.
    #[serde(rename = "whatsapp")]
    WhatsApp {
        to: String,
        body: String,
    },
    Hosted {
        to: String,
        channel: String,
        locale: String,
        /// Rows written before fallbacks existed have none.
        #[serde(default)]
        fallback: Option<String>,
    },
    Mail {
        to: String,
        subject: String,
        text: String,
        html: String,
    },
}

impl StoredEnvelope {
    pub(super) fn from_envelope(envelope: &Envelope) -> Self {
        match envelope {
            Envelope::Sms(sms) => Self::Sms {
                to: sms.to.as_str().to_owned(),
                body: sms.body.expose_secret().to_owned(),
            },
            Envelope::Call(call) => Self::Call {
                to: call.to.as_str().to_owned(),
                text: call.spoken_text.expose_secret().to_owned(),
            },
            Envelope::WhatsApp(message) => Self::WhatsApp {
                to: message.to.as_str().to_owned(),
                body: message.body.expose_secret().to_owned(),
            },
            Envelope::Hosted {
                to,
                channel,
                locale,
                fallback,
            } => Self::Hosted {
                to: to.as_str().to_owned(),
                channel: channel.as_str().to_owned(),
                locale: locale.clone(),
                fallback: fallback.as_ref().map(|text| text.expose_secret().to_owned()),
            },
            Envelope::Mail(mail) => Self::Mail {
                to: mail.to.as_str().to_owned(),
                subject: mail.subject.clone(),
                text: mail.text_body.expose_secret().to_owned(),
                html: mail.html_body.expose_secret().to_owned(),
            },
        }
    }

    pub(super) fn into_envelope(self) -> Result<Envelope, StoreError> {
        let phone = |to: &str| {
            PhoneNumber::parse_e164(to)
                .map_err(|_| StoreError::new("read_outbox_row", "an outbox row has an invalid phone number"))
        };
        Ok(match self {
            Self::Sms { to, body } => Envelope::Sms(OutgoingSms {
                to: phone(&to)?,
                body: SecretString::from(body),
            }),
            Self::Call { to, text } => Envelope::Call(OutgoingCall {
                to: phone(&to)?,
                spoken_text: SecretString::from(text),
            }),
            Self::WhatsApp { to, body } => Envelope::WhatsApp(OutgoingSms {
                to: phone(&to)?,
                body: SecretString::from(body),
            }),
            Self::Hosted {
                to,
                channel,
                locale,
                fallback,
            } => Envelope::Hosted {
                to: phone(&to)?,
                channel: match channel.as_str() {
                    "call" => Channel::Call,
                    "whatsapp" => Channel::WhatsApp,
                    _ => Channel::Sms,
                },
                locale,
                fallback: fallback.map(SecretString::from),
            },
            Self::Mail {
                to,
                subject,
                text,
                html,
            } => Envelope::Mail(OutgoingMail {
                to: Email::parse(&to)
                    .map_err(|_| StoreError::new("read_outbox_row", "an outbox row has an invalid email"))?,
                subject,
                text_body: SecretString::from(text),
                html_body: SecretString::from(html),
            }),
        })
    }
}

impl Sealer {
    /// `envelope` sealed for a row of its kind: the row's kind and payload.
    pub(super) fn seal_envelope(&self, envelope: &Envelope) -> Result<(&'static str, Vec<u8>), StoreError> {
        let kind = envelope.kind();
        let plain = serde_json::to_vec(&StoredEnvelope::from_envelope(envelope))
            .map_err(|_| StoreError::new("seal_outbox_payload", "could not encode an outbox payload"))?;
        Ok((kind, self.seal(kind, &plain)?))
    }

    /// The envelope a row of `kind` holds sealed in `sealed`.
    pub(super) fn open_envelope(&self, kind: &str, sealed: &[u8]) -> Result<Envelope, StoreError> {
        let plain = self.open(kind, sealed)?;
        serde_json::from_slice::<StoredEnvelope>(&plain)
            .map_err(|_| StoreError::new("open_outbox_payload", "an outbox payload does not decode"))?
            .into_envelope()
    }
}
