//! The delivery providers: which one `[sms]` and `[mail]` select, built and
//! checked once by [`crate::config::Config`] (no connection is made), and
//! turned into the domain's messenger and mailer when the service is wired.

use std::{sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use phonegate_adapters::{
    mail::{ConsoleMailer, SmtpMailer},
    sms::{ConsoleEcho, ConsoleProvider, NullProvider},
    twilio::{TwilioClient, TwilioSettings as TwilioClientSettings},
};
use phonegate_api::console::{DevMessage, DevOutbox};
use phonegate_domain::{
    delivery::{MessageTemplates, Messenger},
    ports::{HostedVerification, Mailer, Metrics, SmsSender, VoiceCaller},
};
use secrecy::ExposeSecret as _;

use crate::{
    instrumented::Instrumented,
    settings::{MailProvider, Settings, SmsProvider},
};

/// Who sends texts and places calls, as `sms.provider` chose.
#[derive(Debug)]
pub(crate) enum SmsChoice {
    /// The developer console (its outbox is made when the service is built).
    Console,
    /// Twilio's Messaging and Voice APIs; phonegate makes the codes.
    Twilio(TwilioClient),
    /// Twilio Verify, which makes and checks the codes itself.
    TwilioVerify(TwilioClient),
    /// The benchmarks' provider, which drops everything.
    Null(NullProvider),
}

/// Who sends mail, as `mail.provider` chose.
#[derive(Debug)]
pub(crate) enum MailChoice {
    /// The developer console (its outbox is made when the service is built).
    Console,
    Smtp(SmtpMailer),
}

/// The SMS provider of `[sms]`, checked and built.
pub(crate) fn sms_choice(settings: &Settings) -> anyhow::Result<SmsChoice> {
    Ok(match settings.sms.provider {
        SmsProvider::Console => SmsChoice::Console,
        SmsProvider::Twilio => SmsChoice::Twilio(twilio_client(settings)?),
        SmsProvider::TwilioVerify => SmsChoice::TwilioVerify(twilio_client(settings)?),
        SmsProvider::Null => SmsChoice::Null(null_provider(settings)?),
    })
}

/// The mail provider of `[mail]`, checked and built.
pub(crate) fn mail_choice(settings: &Settings) -> anyhow::Result<MailChoice> {
    Ok(match settings.mail.provider {
        MailProvider::Console => MailChoice::Console,
        MailProvider::Smtp => MailChoice::Smtp(smtp_mailer(settings)?),
    })
}

/// The Twilio client from `[twilio]`.
fn twilio_client(settings: &Settings) -> anyhow::Result<TwilioClient> {
    let twilio = &settings.twilio;
    let sid = twilio
        .account_sid
        .clone()
        .context("twilio.account_sid is required with a Twilio provider")?;
    let token = twilio
        .auth_token
        .clone()
        .context("twilio.auth_token is required with a Twilio provider")?;
    let mut client = TwilioClientSettings::new(sid, token);
    client.from_number = twilio.from_number.clone();
    client.messaging_service_sid = twilio.messaging_service_sid.clone();
    client.verify_service_sid = twilio.verify_service_sid.clone();
    client.api_base_url = twilio.api_base_url.clone();
    client.verify_base_url = twilio.verify_base_url.clone();
    client.timeout = Duration::from_secs(twilio.timeout_seconds);
    client.voice_language = twilio.voice_language.clone();
    client.max_attempts = twilio.max_attempts;
    client.retry_base_delay = Duration::from_millis(twilio.retry_base_delay_ms);
    if settings.sms.provider == SmsProvider::TwilioVerify && twilio.verify_service_sid.is_none() {
        bail!("twilio.verify_service_sid is required when sms.provider = \"twilio_verify\"");
    }
    if settings.sms.provider == SmsProvider::Twilio
        && twilio.from_number.is_none()
        && twilio.messaging_service_sid.is_none()
    {
        bail!("twilio.from_number (or twilio.messaging_service_sid) is required when sms.provider = \"twilio\"");
    }
    TwilioClient::new(client).map_err(|error| anyhow::anyhow!("[twilio]: {error}"))
}

/// The benchmarks' `null` provider. It is refused unless mail stays on the
/// console as well: a deployment that sends people mail is a real one, and
/// a real deployment must never drop its codes.
fn null_provider(settings: &Settings) -> anyhow::Result<NullProvider> {
    if settings.mail.provider != MailProvider::Console {
        anyhow::bail!(
            "sms.provider = \"null\" drops every code and is for benchmarks only; it needs mail.provider = \"console\""
        );
    }
    let tap = settings
        .sms
        .null_tap
        .as_deref()
        .map(|tap| tap.parse::<std::net::SocketAddr>())
        .transpose()
        .context("sms.null_tap must be an address such as 127.0.0.1:9999")?;
    let null = NullProvider::new(tap).map_err(|error| anyhow::anyhow!("sms.null_tap: {error}"))?;
    tracing::warn!("sms.provider = null: every SMS and call is dropped (benchmarks only)");
    Ok(null)
}

/// The SMTP mailer from `[mail]` (no connection is made until a mail is sent).
fn smtp_mailer(settings: &Settings) -> anyhow::Result<SmtpMailer> {
    let url = settings
        .mail
        .smtp_url
        .as_ref()
        .context("mail.smtp_url is required when mail.provider = \"smtp\"")?;
    SmtpMailer::new(
        url.expose_secret(),
        &settings.mail.from,
        Duration::from_secs(settings.mail.timeout_seconds),
    )
    .map_err(|error| anyhow::anyhow!(error))
}

/// What the SMS provider gives the service: the messenger, Twilio Verify
/// when it makes the codes, and the console outbox in development.
pub(crate) struct Delivery {
    pub(crate) messenger: Messenger,
    pub(crate) hosted: Option<Arc<dyn HostedVerification>>,
    pub(crate) console: Option<ConsoleProvider>,
}

/// What [`messenger`] needs besides the provider.
pub(crate) struct MessengerParts<'a> {
    /// The `provider` label of the metrics.
    pub(crate) provider: &'static str,
    pub(crate) app_name: String,
    /// `twilio.verify_locale`, for Twilio Verify's messages.
    pub(crate) verify_locale: String,
    pub(crate) templates: MessageTemplates,
    pub(crate) echo: ConsoleEcho,
    pub(crate) metrics: &'a Arc<dyn Metrics>,
}

/// The messenger of `choice`. Every provider is wrapped so that its calls
/// are timed and its failures counted, whichever provider it is.
pub(crate) fn messenger(choice: SmsChoice, parts: MessengerParts<'_>) -> Delivery {
    let MessengerParts {
        provider,
        app_name,
        verify_locale,
        templates,
        echo,
        metrics,
    } = parts;
    let instrument_sms = |sender: Arc<dyn SmsSender>| -> Arc<dyn SmsSender> {
        Arc::new(Instrumented::new(sender, provider, metrics.clone()))
    };
    let instrument_voice = |caller: Arc<dyn VoiceCaller>| -> Arc<dyn VoiceCaller> {
        Arc::new(Instrumented::new(caller, provider, metrics.clone()))
    };
    let (messenger, hosted, console) = match choice {
        SmsChoice::Console => {
            let console = ConsoleProvider::new(echo);
            let messenger = Messenger::new(
                instrument_sms(Arc::new(console.clone())),
                instrument_voice(Arc::new(console.clone())),
                app_name,
            );
            (messenger, None, Some(console))
        }
        SmsChoice::Twilio(client) => {
            let client = Arc::new(client.with_metrics(metrics.clone()));
            let messenger = Messenger::new(instrument_sms(client.clone()), instrument_voice(client), app_name);
            (messenger, None, None)
        }
        SmsChoice::Null(null) => {
            let null = Arc::new(null);
            let messenger = Messenger::new(instrument_sms(null.clone()), instrument_voice(null), app_name);
            (messenger, None, None)
        }
        SmsChoice::TwilioVerify(client) => {
            let client = Arc::new(client.with_metrics(metrics.clone()));
            let hosted: Arc<dyn HostedVerification> = Arc::new(Instrumented::new(client, provider, metrics.clone()));
            (
                Messenger::hosted(hosted.clone(), verify_locale, app_name),
                Some(hosted),
                None,
            )
        }
    };
    Delivery {
        messenger: messenger.with_templates(templates),
        hosted,
        console,
    }
}

/// The mailer of `choice`, instrumented like the SMS providers, and the
/// console outbox in development.
pub(crate) fn mailer(
    choice: MailChoice,
    provider: &'static str,
    echo: ConsoleEcho,
    metrics: &Arc<dyn Metrics>,
) -> (Arc<dyn Mailer>, Option<ConsoleMailer>) {
    let (mailer, console): (Arc<dyn Mailer>, _) = match choice {
        MailChoice::Console => {
            let console = ConsoleMailer::new(echo);
            (Arc::new(console.clone()), Some(console))
        }
        MailChoice::Smtp(smtp) => (Arc::new(smtp), None),
    };
    (Arc::new(Instrumented::new(mailer, provider, metrics.clone())), console)
}

/// The console providers' messages, for the developer console.
pub(crate) struct ConsoleOutbox {
    pub(crate) sms: ConsoleProvider,
    pub(crate) mail: Option<ConsoleMailer>,
}

impl DevOutbox for ConsoleOutbox {
    fn messages(&self) -> Vec<DevMessage> {
        let texts = self.sms.outbox().into_iter().map(|message| DevMessage {
            id: format!("phone-{}", message.id),
            channel: message.channel.to_owned(),
            to: message.to,
            body: message.body,
        });
        let mails = self.mail.iter().flat_map(ConsoleMailer::outbox).map(|mail| DevMessage {
            id: format!("mail-{}", mail.id),
            channel: "mail".to_owned(),
            to: mail.to,
            body: format!("{}\n\n{}", mail.subject, mail.text_body),
        });
        texts.chain(mails).collect()
    }
}
