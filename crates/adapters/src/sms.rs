//! The console SMS sender, for development and tests.

use std::{
    io::Write as _,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use phonegate_domain::ports::{DeliveryError, OutgoingSms, SmsSender};
use secrecy::ExposeSecret as _;

/// A message the console sender "sent".
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub to: String,
    pub body: String,
}

impl std::fmt::Debug for OutboxMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxMessage")
            .field("to", &self.to)
            .field("body", &"[redacted]")
            .finish()
    }
}

/// Where the console sender writes what it "sends".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleEcho {
    /// Print each message to standard output, for a developer to read.
    Stdout,
    /// Keep messages in the outbox only (tests).
    Silent,
}

/// Sends nothing: prints each message on standard output and keeps the
/// latest messages in an in-memory outbox (the "dev outbox").
///
/// This is for development only, where reading the code is the point. It
/// writes to stdout directly, not through `tracing`, so codes never enter
/// the log pipeline that production deployments ship elsewhere.
#[derive(Debug, Clone)]
pub struct ConsoleSms {
    outbox: Arc<Mutex<Vec<OutboxMessage>>>,
    echo: ConsoleEcho,
}

/// How many messages the dev outbox keeps.
const OUTBOX_CAPACITY: usize = 1000;

impl ConsoleSms {
    pub fn new(echo: ConsoleEcho) -> Self {
        Self {
            outbox: Arc::default(),
            echo,
        }
    }

    /// Every message kept, oldest first.
    pub fn outbox(&self) -> Vec<OutboxMessage> {
        self.outbox
            .lock()
            .map(|outbox| outbox.clone())
            .unwrap_or_default()
    }

    /// The latest message sent to `to`, if any.
    pub fn last_to(&self, to: &str) -> Option<OutboxMessage> {
        self.outbox().into_iter().rev().find(|m| m.to == to)
    }
}

#[async_trait]
impl SmsSender for ConsoleSms {
    async fn send_sms(&self, message: &OutgoingSms) -> Result<(), DeliveryError> {
        let entry = OutboxMessage {
            to: message.to.as_str().to_owned(),
            body: message.body.expose_secret().to_owned(),
        };
        if self.echo == ConsoleEcho::Stdout {
            let mut out = std::io::stdout().lock();
            // A closed stdout must not fail the request: the outbox still has it.
            let _ = writeln!(out, "[console sms] to {}: {}", entry.to, entry.body);
        }
        if let Ok(mut outbox) = self.outbox.lock() {
            if outbox.len() >= OUTBOX_CAPACITY {
                outbox.remove(0);
            }
            outbox.push(entry);
        }
        tracing::debug!(to = %message.to, "console sms delivered to the dev outbox");
        Ok(())
    }
}
