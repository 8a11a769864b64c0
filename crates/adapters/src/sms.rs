//! The console provider, for development and tests: SMS and voice calls
//! that are printed instead of sent.

use std::{
    io::Write as _,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use phonegate_domain::ports::{
    DeliveryError, MessageRef, OutgoingCall, OutgoingSms, ProviderMessageId, SmsSender, VoiceCaller, WhatsAppSender,
};
use secrecy::ExposeSecret as _;

/// A message the console provider "sent".
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Its place in this provider's sequence (1, 2, …): it tells a message
    /// from an earlier one with the same text, so the developer console can
    /// wait for the next message to a number.
    pub id: u64,
    /// `sms`, `whatsapp` or `call`.
    pub channel: &'static str,
    pub to: String,
    /// The text of the SMS, or what the call would say.
    pub body: String,
}

impl std::fmt::Debug for OutboxMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxMessage")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .field("to", &self.to)
            .field("body", &"[redacted]")
            .finish()
    }
}

/// Where the console provider writes what it "sends".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleEcho {
    /// Print each message to standard output, for a developer to read.
    Stdout,
    /// Keep messages in the outbox only (tests).
    Silent,
}

/// Sends nothing: prints each message or call on standard output and keeps
/// the latest in an in-memory outbox (the "dev outbox").
///
/// This is for development only, where reading the code is the point. It
/// writes to stdout directly, not through `tracing`, so codes never enter
/// the log pipeline that production deployments ship elsewhere.
#[derive(Debug, Clone)]
pub struct ConsoleProvider {
    outbox: Arc<Mutex<Vec<OutboxMessage>>>,
    echo: ConsoleEcho,
}

/// How many messages the dev outbox keeps.
const OUTBOX_CAPACITY: usize = 1000;

impl ConsoleProvider {
    pub fn new(echo: ConsoleEcho) -> Self {
        Self {
            outbox: Arc::default(),
            echo,
        }
    }

    /// Every message kept, oldest first.
    pub fn outbox(&self) -> Vec<OutboxMessage> {
        self.outbox.lock().map(|outbox| outbox.clone()).unwrap_or_default()
    }

    /// The latest message or call to `to`, if any.
    pub fn last_to(&self, to: &str) -> Option<OutboxMessage> {
        self.outbox().into_iter().rev().find(|m| m.to == to)
    }

    fn record(&self, channel: &'static str, to: &str, body: &str) {
        if self.echo == ConsoleEcho::Stdout {
            let mut out = std::io::stdout().lock();
            // A closed stdout must not fail the request: the outbox still has it.
            let _ = writeln!(out, "[console {channel}] to {to}: {body}");
        }
        if let Ok(mut outbox) = self.outbox.lock() {
            // The newest message has the highest id, and eviction removes
            // only the oldest, so ids keep growing.
            let id = outbox.last().map_or(1, |last| last.id + 1);
            if outbox.len() >= OUTBOX_CAPACITY {
                outbox.remove(0);
            }
            outbox.push(OutboxMessage {
                id,
                channel,
                to: to.to_owned(),
                body: body.to_owned(),
            });
        }
        tracing::debug!(channel, to, "console provider: message kept in the dev outbox");
    }
}

#[async_trait]
impl SmsSender for ConsoleProvider {
    async fn send_sms(&self, message: &OutgoingSms) -> Result<(), DeliveryError> {
        self.record("sms", message.to.as_str(), message.body.expose_secret());
        Ok(())
    }
}

#[async_trait]
impl WhatsAppSender for ConsoleProvider {
    async fn send_whatsapp(
        &self,
        message: &OutgoingSms,
        _queued: MessageRef,
    ) -> Result<Option<ProviderMessageId>, DeliveryError> {
        self.record("whatsapp", message.to.as_str(), message.body.expose_secret());
        Ok(None)
    }
}

#[async_trait]
impl VoiceCaller for ConsoleProvider {
    async fn call(&self, call: &OutgoingCall) -> Result<(), DeliveryError> {
        self.record("call", call.to.as_str(), call.spoken_text.expose_secret());
        Ok(())
    }
}

/// The `null` provider, for benchmarks: accepts every SMS and call and
/// drops it, so a benchmark measures phonegate and not a provider.
///
/// A benchmark still has to learn the codes to complete its flows, so the
/// provider can copy each message, as one UDP datagram (`to`, a newline,
/// the text), to a `tap` address on the loopback interface, where only a
/// process on the same machine can read it. Sending a datagram never waits
/// for a reader and never fails a delivery: nobody listening means the
/// message is simply gone, as with no tap at all.
#[derive(Debug, Clone)]
pub struct NullProvider {
    tap: Option<Arc<NullTap>>,
}

#[derive(Debug)]
struct NullTap {
    socket: std::net::UdpSocket,
    to: std::net::SocketAddr,
}

impl NullProvider {
    /// A provider that drops everything, copying each message to `tap` if
    /// given. The tap must be a loopback address: codes must not leave the
    /// machine.
    pub fn new(tap: Option<std::net::SocketAddr>) -> Result<Self, String> {
        let tap = match tap {
            None => None,
            Some(to) if !to.ip().is_loopback() => {
                return Err(format!("the null provider's tap {to} is not a loopback address"));
            }
            Some(to) => {
                let bind = if to.is_ipv4() { "127.0.0.1:0" } else { "[::1]:0" };
                let socket =
                    std::net::UdpSocket::bind(bind).map_err(|error| format!("cannot open the tap socket: {error}"))?;
                socket
                    .set_nonblocking(true)
                    .map_err(|error| format!("cannot open the tap socket: {error}"))?;
                Some(Arc::new(NullTap { socket, to }))
            }
        };
        Ok(Self { tap })
    }

    fn drop_message(&self, to: &str, text: &str) {
        if let Some(tap) = &self.tap {
            let datagram = format!("{to}\n{text}");
            // A full socket buffer or no reader only loses the copy.
            let _ = tap.socket.send_to(datagram.as_bytes(), tap.to);
        }
    }
}

#[async_trait]
impl SmsSender for NullProvider {
    async fn send_sms(&self, message: &OutgoingSms) -> Result<(), DeliveryError> {
        self.drop_message(message.to.as_str(), message.body.expose_secret());
        Ok(())
    }
}

#[async_trait]
impl VoiceCaller for NullProvider {
    async fn call(&self, call: &OutgoingCall) -> Result<(), DeliveryError> {
        self.drop_message(call.to.as_str(), call.spoken_text.expose_secret());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonegate_domain::phone::PhoneNumber;
    use secrecy::SecretString;

    #[tokio::test]
    async fn the_null_provider_copies_messages_to_its_tap_and_accepts_without_one() {
        let reader = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let provider = NullProvider::new(Some(reader.local_addr().unwrap())).unwrap();
        let to = PhoneNumber::parse_e164("+85251234567").unwrap();
        let message = OutgoingSms {
            to: to.clone(),
            body: SecretString::from("Your phonegate code is 1234"),
        };
        provider.send_sms(&message).await.unwrap();
        let mut buffer = [0u8; 256];
        let (len, _) = reader.recv_from(&mut buffer).unwrap();
        assert_eq!(&buffer[..len], b"+85251234567\nYour phonegate code is 1234");

        NullProvider::new(None).unwrap().send_sms(&message).await.unwrap();
    }

    #[test]
    fn the_null_provider_refuses_a_tap_off_the_machine() {
        let error = NullProvider::new(Some("192.0.2.1:9".parse().unwrap())).unwrap_err();
        assert!(error.contains("not a loopback"), "{error}");
    }
}
