//! The SMTP mailer against a real SMTP server on loopback, reading the
//! message it delivers. The server is the `mailin` SMTP server library
//! (the protocol engine behind mailin-embedded, whose TLS feature would pull
//! in a second crypto stack), driven over a plain TCP socket.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::{
    io::{BufRead as _, BufReader},
    net::{IpAddr, TcpListener},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use mailin::{Action, Handler, Response, SessionBuilder, response};
use phonegate_adapters::mail::SmtpMailer;
use phonegate_domain::{
    account::Email,
    ports::{DeliveryError, Mailer, OutgoingMail},
};
use secrecy::SecretString;

/// What the server received: envelope sender, recipients and the raw message.
#[derive(Debug, Clone, Default)]
struct Received {
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

#[derive(Clone, Default)]
struct Inbox {
    current: Received,
    delivered: Arc<Mutex<Vec<Received>>>,
}

impl Handler for Inbox {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.current = Received {
            from: from.to_owned(),
            ..Received::default()
        };
        response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        if to.contains("blocked@") {
            return response::NO_MAILBOX;
        }
        self.current.to.push(to.to_owned());
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.delivered.lock().unwrap().push(self.current.clone());
        response::OK
    }
}

/// Starts an SMTP server on a free loopback port; returns its port and inbox.
fn smtp_server() -> (u16, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let delivered: Arc<Mutex<Vec<Received>>> = Arc::default();
    let inbox = Inbox {
        current: Received::default(),
        delivered: delivered.clone(),
    };
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let inbox = inbox.clone();
            std::thread::spawn(move || serve_connection(stream, inbox));
        }
    });
    (port, delivered)
}

/// One SMTP conversation: read lines, let the session answer them.
fn serve_connection(stream: std::net::TcpStream, inbox: Inbox) -> std::io::Result<()> {
    let mut session = SessionBuilder::new("smtp.test").build(stream.peer_addr()?.ip(), inbox);
    let mut writer = stream.try_clone()?;
    session.greeting().write_to(&mut writer)?;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let response = session.process(&line);
        match response.action {
            Action::NoReply => {}
            Action::Close => return response.write_to(&mut writer),
            Action::Reply | Action::UpgradeTls => response.write_to(&mut writer)?,
        }
    }
}

fn mail(to: &str) -> OutgoingMail {
    OutgoingMail {
        to: Email::parse(to).unwrap(),
        subject: "Reset your phonegate password".into(),
        text_body: SecretString::from("Open https://app.example.com/reset?token=abc123 within 60 minutes."),
        html_body: SecretString::from("<p><a href=\"https://app.example.com/reset?token=abc123\">Reset</a></p>"),
    }
}

#[tokio::test]
async fn a_message_reaches_the_smtp_server_with_text_and_html_bodies() {
    let (port, delivered) = smtp_server();
    let mailer = SmtpMailer::new(
        &format!("smtp://127.0.0.1:{port}"),
        "phonegate <no-reply@example.com>",
        Duration::from_secs(5),
    )
    .unwrap();
    mailer.send(&mail("admin@beyondvip.com")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let message = loop {
        if let Some(message) = delivered.lock().unwrap().first().cloned() {
            break message;
        }
        assert!(Instant::now() < deadline, "nothing was delivered");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(message.from, "no-reply@example.com");
    assert_eq!(message.to, vec!["admin@beyondvip.com"]);
    let data = String::from_utf8(message.data).unwrap();
    assert!(data.contains("Subject: Reset your phonegate password"), "{data}");
    assert!(data.contains("From: phonegate <no-reply@example.com>"), "{data}");
    assert!(data.contains("To: admin@beyondvip.com"), "{data}");
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(data.contains("text/plain"), "{data}");
    assert!(data.contains("text/html"), "{data}");
    assert!(data.contains("https://app.example.com/reset?token=abc123"), "{data}");
}

#[tokio::test]
async fn a_refused_recipient_is_an_error() {
    let (port, _delivered) = smtp_server();
    let mailer = SmtpMailer::new(
        &format!("smtp://127.0.0.1:{port}"),
        "no-reply@example.com",
        Duration::from_secs(5),
    )
    .unwrap();
    let error = mailer.send(&mail("blocked@example.com")).await.unwrap_err();
    assert!(matches!(error, DeliveryError::Rejected(_)), "{error:?}");
    // The server's text quotes the address; the error keeps the code only.
    assert_eq!(
        error.to_string(),
        "the provider refused the message for good (smtp 550)"
    );
}

/// Security II, finding 14: a permanent SMTP refusal (550: no such
/// mailbox) fails the message at once instead of retrying it until it
/// expires, and its recorded error holds neither the address nor the text.
#[tokio::test]
async fn a_permanent_refusal_fails_the_message_at_once() {
    use phonegate_domain::{
        delivery::Messenger,
        outbox::{
            ClaimedMessage, DeliveryOutcome, DispatchSettings, Dispatcher, Envelope, MockOutboxStore, OutboxMessage,
        },
        ports::{MockClock, MockSmsSender, MockVoiceCaller},
        time::Timestamp,
    };
    let (port, delivered) = smtp_server();
    let mailer = SmtpMailer::new(
        &format!("smtp://127.0.0.1:{port}"),
        "no-reply@example.com",
        Duration::from_secs(5),
    )
    .unwrap();
    let now = Timestamp::from_unix_millis(1_800_000_000_000);
    let mut clock = MockClock::new();
    clock.expect_now().return_const(now);
    let mut outbox = MockOutboxStore::new();
    let mut queue = vec![ClaimedMessage {
        id: 1,
        lease: 7,
        attempts: 1,
        message: OutboxMessage {
            envelope: Envelope::Mail(mail("blocked@example.com")),
            purpose: "password_reset",
            created_at: now,
            not_after: now.plus(Duration::from_secs(3600)),
        },
        avoid: None,
    }];
    outbox
        .expect_claim_due()
        .times(1)
        .returning(move |_, _, _, _| Ok(std::mem::take(&mut queue)));
    let outcomes: Arc<Mutex<Vec<DeliveryOutcome>>> = Arc::default();
    let recorded = outcomes.clone();
    outbox.expect_finish().returning(move |_, _, outcome, _, _| {
        recorded.lock().unwrap().push(outcome);
        Ok(())
    });
    let dispatcher = Dispatcher::new(
        Arc::new(outbox),
        Messenger::new(
            Arc::new(MockSmsSender::new()),
            Arc::new(MockVoiceCaller::new()),
            "phonegate".into(),
        ),
        Arc::new(mailer),
        Arc::new(clock),
        DispatchSettings::default(),
    );
    let report = dispatcher.dispatch_due().await.unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    let outcomes = outcomes.lock().unwrap();
    let [DeliveryOutcome::Failed { error }] = outcomes.as_slice() else {
        panic!("failed at once: {outcomes:?}");
    };
    assert!(
        !error.contains("blocked") && !error.to_lowercase().contains("mailbox"),
        "{error}"
    );
    assert!(delivered.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mailer = SmtpMailer::new(
        &format!("smtp://127.0.0.1:{port}"),
        "no-reply@example.com",
        Duration::from_secs(2),
    )
    .unwrap();
    let error = mailer.send(&mail("admin@beyondvip.com")).await.unwrap_err();
    assert!(matches!(error, DeliveryError::Unavailable(_)), "{error:?}");
}

/// lettre's connection pool needs a Tokio runtime, even to be dropped.
#[tokio::test]
async fn credentials_in_the_url_never_show() {
    let mailer = SmtpMailer::new(
        "smtps://user:hunter2-secret@smtp.example.com:465",
        "no-reply@example.com",
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(!format!("{mailer:?}").contains("hunter2"));
    let error = SmtpMailer::new(
        "nonsense://user:hunter2-secret@x",
        "no-reply@example.com",
        Duration::from_secs(5),
    )
    .unwrap_err();
    assert!(!error.contains("hunter2"), "{error}");
    // STARTTLS and implicit TLS URLs are accepted.
    SmtpMailer::new(
        "smtp://smtp.example.com:587?tls=required",
        "no-reply@example.com",
        Duration::from_secs(5),
    )
    .unwrap();
}
