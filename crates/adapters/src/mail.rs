//! Mailers: the console mailer for development, and SMTP with lettre.

use std::{
    io::Write as _,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use lettre::{
    AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};
use phonegate_domain::ports::{DeliveryError, Mailer, OutgoingMail};
use secrecy::ExposeSecret as _;

use crate::sms::ConsoleEcho;

/// An email the console mailer "sent".
#[derive(Clone, PartialEq, Eq)]
pub struct SentMail {
    /// Its place in this mailer's sequence (1, 2, …), as
    /// [`crate::sms::OutboxMessage::id`].
    pub id: u64,
    pub to: String,
    pub subject: String,
    pub text_body: String,
}

impl std::fmt::Debug for SentMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentMail")
            .field("id", &self.id)
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("text_body", &"[redacted]")
            .finish()
    }
}

/// Prints each email on standard output (not to the logs: it may hold a
/// reset link) and keeps it in an in-memory outbox. Development only.
#[derive(Debug, Clone)]
pub struct ConsoleMailer {
    outbox: Arc<Mutex<Vec<SentMail>>>,
    echo: ConsoleEcho,
}

impl ConsoleMailer {
    pub fn new(echo: ConsoleEcho) -> Self {
        Self {
            outbox: Arc::default(),
            echo,
        }
    }

    pub fn outbox(&self) -> Vec<SentMail> {
        self.outbox.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Mailer for ConsoleMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), DeliveryError> {
        let (to, text_body) = (mail.to.as_str(), mail.text_body.expose_secret());
        if self.echo == ConsoleEcho::Stdout {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "[console mail] to {to} — {}\n{text_body}", mail.subject);
        }
        if let Ok(mut outbox) = self.outbox.lock() {
            // As in the SMS console: the newest mail has the highest id.
            let id = outbox.last().map_or(1, |last| last.id + 1);
            if outbox.len() >= 1000 {
                outbox.remove(0);
            }
            outbox.push(SentMail {
                id,
                to: to.to_owned(),
                subject: mail.subject.clone(),
                text_body: text_body.to_owned(),
            });
        }
        Ok(())
    }
}

/// Sends email through an SMTP server: `smtp://host:port` (plain, for a
/// local relay), `smtp://host:587?tls=required` (STARTTLS) or
/// `smtps://user:password@host:465` (implicit TLS), with rustls.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds the credentials from the URL: never print it.
        f.debug_struct("SmtpMailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    pub fn new(url: &str, from: &str, timeout: Duration) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            // lettre's error may quote the URL, which may hold a password.
            .map_err(|_| "mail.smtp_url is not a valid smtp:// or smtps:// URL".to_owned())?
            .timeout(Some(timeout))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|error| format!("mail.from is not a valid address: {error}"))?;
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), DeliveryError> {
        let to = mail
            .to
            .as_str()
            .parse::<Mailbox>()
            .map_err(|_| DeliveryError::InvalidNumber)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                mail.text_body.expose_secret().to_owned(),
                mail.html_body.expose_secret().to_owned(),
            ))
            .map_err(|error| DeliveryError::Misconfigured(format!("building the message: {error}")))?;
        // The server's text may quote the recipient's address: the error
        // carries the reply code only (it ends up in the outbox's
        // `last_error`), and the full text goes to the log.
        let code = |error: &lettre::transport::smtp::Error| {
            error
                .status()
                .map_or_else(|| "smtp".to_owned(), |code| format!("smtp {code}"))
        };
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            // A permanent (5xx) answer means this message will never be
            // accepted (no such mailbox, refused sender, policy): fail it at
            // once instead of retrying until it expires.
            Err(error) if error.is_permanent() => {
                tracing::error!(error = %error, "the SMTP server refused the message for good");
                Err(DeliveryError::Rejected(code(&error)))
            }
            Err(error) => {
                tracing::warn!(error = %error, "the SMTP server is unavailable");
                Err(DeliveryError::Unavailable(code(&error)))
            }
        }
    }
}
