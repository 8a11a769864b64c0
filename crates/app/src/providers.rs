//! The delivery providers: which ones `[sms]`, `[voice]` and `[mail]`
//! select, built and checked once by [`crate::config::Config`] (no
//! connection is made), and turned into the domain's messenger (with its
//! routes) and mailer when the service is wired.

use std::{sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use phonegate_adapters::{
    http_provider::HttpProvider,
    mail::{ConsoleMailer, SmtpMailer},
    plivo::PlivoClient,
    sms::{ConsoleEcho, ConsoleProvider, NullProvider},
    telnyx::TelnyxClient,
    twilio::{TwilioClient, TwilioSettings as TwilioClientSettings},
    vonage::VonageClient,
};
use phonegate_api::console::{DevMessage, DevOutbox};
use phonegate_domain::{
    delivery::{MessageTemplates, Messenger, breaker::BreakerSettings, routes::RoutePrefix},
    ports::{HostedVerification, Mailer, Metrics, Sender, SmsSender, VoiceCaller, WhatsAppSender},
};
use secrecy::ExposeSecret as _;

use crate::{
    instrumented::Instrumented,
    routes,
    settings::{MailProvider, Settings, SmsProvider},
    vendors,
    whatsapp::{self, WhatsAppPlan},
};

/// One provider's client, built and checked from its settings section.
#[derive(Debug, Clone)]
pub(crate) enum Client {
    /// The developer console (its outbox is made when the service is built).
    Console,
    /// Twilio's Messaging and Voice APIs, and Verify (`twilio_verify`).
    Twilio(TwilioClient),
    /// The benchmarks' provider, which drops everything.
    Null(NullProvider),
    Vonage(VonageClient),
    Plivo(PlivoClient),
    Telnyx(TelnyxClient),
    Http(HttpProvider),
}

/// A route as the settings give it, checked: `prefix` `None` is the
/// default route.
#[derive(Debug, Clone)]
pub(crate) struct RoutePlan {
    pub(crate) prefix: Option<RoutePrefix>,
    pub(crate) providers: Vec<SmsProvider>,
    pub(crate) sender: Option<Sender>,
}

/// Who sends texts and places calls, as `[sms]` and `[voice]` chose: every
/// provider a route names, built once, and the routes.
#[derive(Debug)]
pub(crate) struct SmsChoice {
    pub(crate) clients: Vec<(SmsProvider, Client)>,
    pub(crate) sms_routes: Vec<RoutePlan>,
    pub(crate) voice_routes: Vec<RoutePlan>,
    /// Twilio Verify makes and checks the codes (it is the default route).
    pub(crate) hosted: bool,
    /// Who carries WhatsApp, for which surfaces.
    pub(crate) whatsapp: WhatsAppPlan,
    /// Settings that work but deserve a second look.
    pub(crate) warnings: Vec<String>,
}

impl SmsChoice {
    fn client(&self, provider: SmsProvider) -> Option<&Client> {
        self.clients
            .iter()
            .find(|(name, _)| *name == provider)
            .map(|(_, client)| client)
    }

    /// Whether the developer console's provider is in use.
    pub(crate) fn uses_console(&self) -> bool {
        self.client(SmsProvider::Console).is_some()
    }
}

/// Who sends mail, as `mail.provider` chose.
#[derive(Debug)]
pub(crate) enum MailChoice {
    /// The developer console (its outbox is made when the service is built).
    Console,
    Smtp(SmtpMailer),
}

/// The providers and routes of `[sms]` and `[voice]`, checked and built.
pub(crate) fn sms_choice(settings: &Settings) -> anyhow::Result<SmsChoice> {
    let plans = routes::plan(settings)?;
    let mut clients = Vec::new();
    for provider in settings.providers_in_use() {
        let client = match provider {
            SmsProvider::Console => Client::Console,
            SmsProvider::Twilio | SmsProvider::TwilioVerify => Client::Twilio(twilio_client(settings)?),
            SmsProvider::Null => Client::Null(null_provider(settings)?),
            SmsProvider::Vonage => Client::Vonage(vendors::vonage(settings)?),
            SmsProvider::Plivo => Client::Plivo(vendors::plivo(settings)?),
            SmsProvider::Telnyx => Client::Telnyx(vendors::telnyx(settings)?),
            SmsProvider::Http => Client::Http(vendors::http(settings)?),
        };
        clients.push((provider, client));
    }
    let choice = SmsChoice {
        clients,
        sms_routes: plans.sms,
        voice_routes: plans.voice,
        hosted: settings.hosted_codes(),
        whatsapp: whatsapp::plan(settings)?,
        warnings: plans.warnings,
    };
    routes::check_senders(settings, &choice)?;
    Ok(choice)
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
    client.whatsapp_from = twilio.whatsapp_from.clone();
    client.api_base_url = twilio.api_base_url.clone();
    client.verify_base_url = twilio.verify_base_url.clone();
    client.timeout = Duration::from_secs(twilio.timeout_seconds);
    client.voice_language = twilio.voice_language.clone();
    client.max_attempts = twilio.max_attempts;
    client.retry_base_delay = Duration::from_millis(twilio.retry_base_delay_ms);
    client.status_callback =
        crate::receipts::public_url(settings)?.map(|url| crate::receipts::callback_url(&url, "twilio"));
    if settings.uses_provider(SmsProvider::TwilioVerify) && twilio.verify_service_sid.is_none() {
        bail!("twilio.verify_service_sid is required when a route names \"twilio_verify\"");
    }
    if settings.sms_default_route() == [SmsProvider::Twilio]
        && settings.sms.routes.is_empty()
        && settings.sms.sender.is_none()
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
    /// Twilio Verify when this instance makes its own codes but has a
    /// Verify service configured: it checks the codes Verify made for
    /// another instance of the fleet (in the middle of a switch).
    pub(crate) verify_checks: Option<Arc<dyn HostedVerification>>,
    pub(crate) console: Option<ConsoleProvider>,
}

/// What [`messenger`] needs besides the providers.
pub(crate) struct MessengerParts<'a> {
    pub(crate) app_name: String,
    /// `twilio.verify_locale`, for Twilio Verify's messages.
    pub(crate) verify_locale: String,
    pub(crate) templates: MessageTemplates,
    pub(crate) breaker: BreakerSettings,
    pub(crate) echo: ConsoleEcho,
    pub(crate) metrics: &'a Arc<dyn Metrics>,
}

/// The messenger of `choice`: its routes, each provider bound to the
/// route's sender and wrapped so that its calls are timed and its failures
/// counted under its name.
pub(crate) fn messenger(choice: SmsChoice, parts: MessengerParts<'_>) -> Delivery {
    let MessengerParts {
        app_name,
        verify_locale,
        templates,
        breaker,
        echo,
        metrics,
    } = parts;
    let console = choice.uses_console().then(|| ConsoleProvider::new(echo));
    let bound = Bound {
        choice: &choice,
        console: console.as_ref(),
        metrics,
    };
    let verify_checks = (!choice.hosted)
        .then(|| {
            choice.clients.iter().find_map(|(_, client)| match client {
                Client::Twilio(twilio) if twilio.settings().verify_service_sid.is_some() => Some(twilio),
                _ => None,
            })
        })
        .flatten()
        .map(|twilio| -> Arc<dyn HostedVerification> {
            let client = Arc::new(twilio.clone().with_metrics(metrics.clone()));
            Arc::new(Instrumented::new(
                client,
                SmsProvider::TwilioVerify.as_str(),
                metrics.clone(),
            ))
        });
    // Twilio Verify sends no text of ours: the routes leave it out, and
    // with Verify leading the default route the rest are its fallback.
    let sms = routes::build(&choice.sms_routes, |provider, sender| bound.sms(provider, sender));
    let voice = routes::build(&choice.voice_routes, |provider, sender| bound.voice(provider, sender));
    // One route for every number: WhatsApp's sender is the provider's own.
    let whatsapp_route = RoutePlan {
        prefix: None,
        providers: choice.whatsapp.providers.clone(),
        sender: None,
    };
    let whatsapp = routes::build(std::slice::from_ref(&whatsapp_route), |provider, _| {
        bound.whatsapp(provider)
    });
    let (messenger, hosted) = if choice.hosted {
        let Some(Client::Twilio(client)) = choice.client(SmsProvider::TwilioVerify) else {
            unreachable!("a hosted route names twilio_verify, whose client is built");
        };
        let client = Arc::new(client.clone().with_metrics(metrics.clone()));
        let hosted: Arc<dyn HostedVerification> = Arc::new(Instrumented::new(
            client,
            SmsProvider::TwilioVerify.as_str(),
            metrics.clone(),
        ));
        let mut messenger = Messenger::hosted(hosted.clone(), verify_locale, app_name);
        if !sms.is_empty() || !voice.is_empty() {
            messenger = messenger.with_local_fallback(sms, voice);
        }
        (messenger, Some(hosted))
    } else {
        (Messenger::routed(sms, voice, app_name), None)
    };
    Delivery {
        messenger: messenger
            .with_whatsapp(whatsapp, choice.whatsapp.purposes.iter().copied())
            .with_templates(templates)
            .with_breaker(breaker)
            .with_metrics(metrics.clone()),
        hosted,
        verify_checks,
        console,
    }
}

/// Turns a provider of a route into the client that route uses.
struct Bound<'a> {
    choice: &'a SmsChoice,
    console: Option<&'a ConsoleProvider>,
    metrics: &'a Arc<dyn Metrics>,
}

impl Bound<'_> {
    fn sms(&self, provider: SmsProvider, sender: Option<&Sender>) -> Option<Arc<dyn SmsSender>> {
        if provider == SmsProvider::TwilioVerify {
            return None;
        }
        let client: Arc<dyn SmsSender> = match self.choice.client(provider)? {
            Client::Console => Arc::new(self.console?.clone()),
            Client::Null(null) => Arc::new(null.clone()),
            Client::Twilio(twilio) => {
                Arc::new(bind(twilio.clone(), sender, TwilioClient::with_sender).with_metrics(self.metrics.clone()))
            }
            Client::Vonage(vonage) => {
                Arc::new(bind(vonage.clone(), sender, VonageClient::with_sender).with_metrics(self.metrics.clone()))
            }
            Client::Plivo(plivo) => {
                Arc::new(bind(plivo.clone(), sender, PlivoClient::with_sender).with_metrics(self.metrics.clone()))
            }
            Client::Telnyx(telnyx) => {
                Arc::new(bind(telnyx.clone(), sender, TelnyxClient::with_sender).with_metrics(self.metrics.clone()))
            }
            Client::Http(http) => {
                Arc::new(bind(http.clone(), sender, HttpProvider::with_sender).with_metrics(self.metrics.clone()))
            }
        };
        Some(Arc::new(Instrumented::new(
            client,
            provider.as_str(),
            self.metrics.clone(),
        )))
    }

    fn whatsapp(&self, provider: SmsProvider) -> Option<Arc<dyn WhatsAppSender>> {
        let client: Arc<dyn WhatsAppSender> = match self.choice.client(provider)? {
            Client::Console => Arc::new(self.console?.clone()),
            Client::Twilio(twilio) if twilio.sends_whatsapp() => {
                Arc::new(twilio.clone().with_metrics(self.metrics.clone()))
            }
            Client::Http(http) => Arc::new(http.clone().with_metrics(self.metrics.clone())),
            _ => return None,
        };
        Some(Arc::new(Instrumented::new(
            client,
            provider.as_str(),
            self.metrics.clone(),
        )))
    }

    fn voice(&self, provider: SmsProvider, sender: Option<&Sender>) -> Option<Arc<dyn VoiceCaller>> {
        let client: Arc<dyn VoiceCaller> = match self.choice.client(provider)? {
            Client::Console => Arc::new(self.console?.clone()),
            Client::Null(null) => Arc::new(null.clone()),
            Client::Twilio(twilio) => {
                Arc::new(bind(twilio.clone(), sender, TwilioClient::with_sender).with_metrics(self.metrics.clone()))
            }
            Client::Vonage(vonage) => {
                Arc::new(bind(vonage.clone(), sender, VonageClient::with_sender).with_metrics(self.metrics.clone()))
            }
            Client::Http(http) => {
                Arc::new(bind(http.clone(), sender, HttpProvider::with_sender).with_metrics(self.metrics.clone()))
            }
            Client::Plivo(_) | Client::Telnyx(_) => return None,
        };
        Some(Arc::new(Instrumented::new(
            client,
            provider.as_str(),
            self.metrics.clone(),
        )))
    }
}

/// `client` sending from `sender`, when the route names one.
fn bind<C>(client: C, sender: Option<&Sender>, with_sender: fn(C, Sender) -> C) -> C {
    match sender {
        Some(sender) => with_sender(client, sender.clone()),
        None => client,
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
