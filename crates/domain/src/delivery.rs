//! Delivering codes to people: the words, and the choice of SMS, call, or a
//! provider that sends its own codes.

pub mod breaker;
mod failover;
mod receipts;
pub mod routes;
mod whatsapp;

use std::{collections::HashMap, fmt, sync::Arc};

use secrecy::SecretString;

use self::{
    breaker::{BreakerSettings, CircuitBreaker},
    routes::{Hop, Routes},
    whatsapp::WhatsApp,
};
pub use self::{
    failover::{Attempt, Delivery},
    receipts::{ReceiptOutcome, Receipts},
};
use crate::{
    otp::{Channel, IssuedCode, OtpCode, Purpose},
    outbox::{Envelope, OutboxMessage, Outgoing},
    phone::PhoneNumber,
    ports::{HostedVerification, Metrics, NoMetrics, OutgoingCall, OutgoingSms, SmsSender, VoiceCaller},
    time::Timestamp,
};

/// The words of text messages and calls. Placeholders: `{app}` (the
/// service name), `{code}` (the digits), `{digits}` (the digits one by one,
/// comma-separated, for text-to-speech).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTemplates {
    pub sms: String,
    pub voice: String,
    /// Per-surface overrides of `sms` and `voice`.
    pub sms_by_purpose: HashMap<Purpose, String>,
    pub voice_by_purpose: HashMap<Purpose, String>,
}

impl MessageTemplates {
    /// "Your phonegate code is 1234"; calls read the digits one by one, twice.
    pub fn english() -> Self {
        Self {
            sms: "Your {app} code is {code}".into(),
            voice: "Your {app} code is {digits}. Again, your code is {digits}.".into(),
            sms_by_purpose: HashMap::new(),
            voice_by_purpose: HashMap::new(),
        }
    }

    /// Refuses templates that would never deliver the code.
    pub fn validate(&self) -> Result<(), String> {
        let all_sms = std::iter::once(&self.sms).chain(self.sms_by_purpose.values());
        if let Some(bad) = all_sms.into_iter().find(|t| !t.contains("{code}")) {
            return Err(format!("the SMS template {bad:?} has no {{code}}"));
        }
        let all_voice = std::iter::once(&self.voice).chain(self.voice_by_purpose.values());
        if let Some(bad) = all_voice
            .into_iter()
            .find(|t| !t.contains("{code}") && !t.contains("{digits}"))
        {
            return Err(format!(
                "the voice template {bad:?} has neither {{code}} nor {{digits}}"
            ));
        }
        Ok(())
    }
}

/// Where codes come from: generated here and sent with our templates
/// through the routes, or generated, sent and checked by a provider
/// (Twilio Verify).
#[derive(Clone)]
enum Mode {
    Local(LocalRoutes),
    Hosted {
        provider: Hop<dyn HostedVerification>,
        locale: String,
        /// Providers that send phonegate's own code when the hosted one
        /// cannot start a verification.
        fallback: Option<LocalRoutes>,
    },
}

/// The routes of texts and calls with phonegate's own codes.
#[derive(Clone)]
struct LocalRoutes {
    sms: Routes<dyn SmsSender>,
    voice: Routes<dyn VoiceCaller>,
}

/// Sends codes by SMS or voice call, in the deployment's words, through
/// the routes' providers (failing over from one to the next).
#[derive(Clone)]
pub struct Messenger {
    mode: Mode,
    app_name: String,
    templates: MessageTemplates,
    /// Shared by every clone: one set of circuits per instance.
    breaker: Arc<CircuitBreaker>,
    metrics: Arc<dyn Metrics>,
    /// Shared by every clone, and kept out of line: messengers are moved
    /// through the app's wiring futures, which must stay small.
    whatsapp: Arc<WhatsApp>,
}

impl fmt::Debug for Messenger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Messenger")
            .field("app_name", &self.app_name)
            .field("templates", &self.templates)
            .finish_non_exhaustive()
    }
}

/// The provider name of a messenger built from one sender and one caller
/// ([`Messenger::new`]).
pub const SINGLE_PROVIDER: &str = "provider";

/// The provider name of a messenger that hosts its codes at Twilio Verify.
pub const HOSTED_PROVIDER: &str = "twilio_verify";

impl Messenger {
    /// A messenger that sends its own texts and calls through one provider,
    /// in English.
    pub fn new(sms: Arc<dyn SmsSender>, voice: Arc<dyn VoiceCaller>, app_name: String) -> Self {
        Self::routed(
            Routes::single(SINGLE_PROVIDER, sms),
            Routes::single(SINGLE_PROVIDER, voice),
            app_name,
        )
    }

    /// A messenger that sends its own texts and calls through `sms` and
    /// `voice`, in English.
    pub fn routed(sms: Routes<dyn SmsSender>, voice: Routes<dyn VoiceCaller>, app_name: String) -> Self {
        Self::with_mode(Mode::Local(LocalRoutes { sms, voice }), app_name)
    }

    /// A messenger that asks `provider` to send its own codes, in `locale`.
    pub fn hosted(provider: Arc<dyn HostedVerification>, locale: String, app_name: String) -> Self {
        let provider = Hop {
            provider: HOSTED_PROVIDER,
            client: provider,
        };
        let mode = Mode::Hosted {
            provider,
            locale,
            fallback: None,
        };
        Self::with_mode(mode, app_name)
    }

    /// The same hosted messenger, sending phonegate's own code through
    /// `sms` and `voice` when the provider cannot start a verification with
    /// a failure another provider may not have (an outage, a throttle).
    /// The check then goes to whoever issued the code. A local messenger
    /// is returned unchanged.
    pub fn with_local_fallback(self, sms: Routes<dyn SmsSender>, voice: Routes<dyn VoiceCaller>) -> Self {
        let mode = match self.mode {
            Mode::Hosted { provider, locale, .. } => Mode::Hosted {
                provider,
                locale,
                fallback: Some(LocalRoutes { sms, voice }),
            },
            local => local,
        };
        Self { mode, ..self }
    }

    /// The routes of phonegate's own codes: a local messenger's, or a
    /// hosted one's fallback.
    fn local_routes(&self) -> Option<&LocalRoutes> {
        match &self.mode {
            Mode::Local(routes) => Some(routes),
            Mode::Hosted { fallback, .. } => fallback.as_ref(),
        }
    }

    fn with_mode(mode: Mode, app_name: String) -> Self {
        Self {
            mode,
            app_name,
            templates: MessageTemplates::english(),
            breaker: Arc::new(CircuitBreaker::new(BreakerSettings::default())),
            metrics: Arc::new(NoMetrics),
            whatsapp: Arc::default(),
        }
    }

    /// The same messenger, opening providers' circuits as `settings` say.
    pub fn with_breaker(self, settings: BreakerSettings) -> Self {
        Self {
            breaker: Arc::new(CircuitBreaker::new(settings)),
            ..self
        }
    }

    /// The same messenger, counting failovers and circuit changes in
    /// `metrics`.
    pub fn with_metrics(self, metrics: Arc<dyn Metrics>) -> Self {
        Self { metrics, ..self }
    }

    /// The outbox kinds ([`Envelope::kind`]) this messenger can deliver, so
    /// a dispatcher claims only those: in a fleet whose instances have
    /// different providers, each message goes to one that can send it.
    pub fn deliverable_kinds(&self) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        if let Mode::Hosted { .. } = self.mode {
            kinds.extend(["hosted_sms", "hosted_call", "hosted_whatsapp"]);
        }
        if let Some(LocalRoutes { sms, voice }) = self.local_routes() {
            let local = [
                (!sms.is_empty()).then_some("sms"),
                (!voice.is_empty()).then_some("call"),
            ];
            kinds.extend(local.into_iter().flatten());
        }
        if !self.whatsapp_routes().is_empty() {
            kinds.push("whatsapp");
        }
        kinds
    }

    /// Whether `provider`'s circuit for `channel` (`sms`, `call`,
    /// `whatsapp`, `hosted`) is open at `now`: it is skipped until its cool-off ends.
    pub fn circuit_open(&self, provider: &'static str, channel: &'static str, now: Timestamp) -> bool {
        self.breaker.is_open((provider, channel), now)
    }

    /// The same messenger with other words.
    pub fn with_templates(self, templates: MessageTemplates) -> Self {
        Self { templates, ..self }
    }

    fn render(&self, template: &str, code: &OtpCode) -> String {
        let digits = code.expose().chars().map(String::from).collect::<Vec<_>>().join(", ");
        template
            .replace("{app}", &self.app_name)
            .replace("{code}", code.expose())
            .replace("{digits}", &digits)
    }

    /// The text message for a code of `purpose`: "Your phonegate code is 1234".
    pub fn sms_text(&self, purpose: Purpose, code: &OtpCode) -> String {
        let template = self
            .templates
            .sms_by_purpose
            .get(&purpose)
            .unwrap_or(&self.templates.sms);
        self.render(template, code)
    }

    /// What a call says: by default the code read digit by digit, twice, so
    /// it can be written down ("Your phonegate code is 1, 2, 3, 4. Again,
    /// your code is 1, 2, 3, 4.").
    pub fn spoken_text(&self, purpose: Purpose, code: &OtpCode) -> String {
        let template = self
            .templates
            .voice_by_purpose
            .get(&purpose)
            .unwrap_or(&self.templates.voice);
        self.render(template, code)
    }

    /// The outbox entry that delivers `issued` to `phone` over `channel`: a
    /// text, WhatsApp message or call with our words, or a request to the
    /// provider that makes its own codes. A text goes by WhatsApp when the
    /// surface's settings say so. A test number gets nothing.
    pub fn compose(&self, phone: &PhoneNumber, channel: Channel, issued: &IssuedCode, now: Timestamp) -> Outgoing {
        if issued.test_number {
            return Outgoing::Nothing;
        }
        let channel = self.channel_for(issued.purpose, channel);
        let envelope = match (&self.mode, channel) {
            (Mode::Hosted { locale, fallback, .. }, channel) => Envelope::Hosted {
                to: phone.clone(),
                channel,
                locale: locale.clone(),
                // phonegate's own code for the same challenge (its hash is
                // the challenge's), sent only if the provider cannot start.
                fallback: fallback.as_ref().map(|_| {
                    SecretString::from(match channel {
                        Channel::Sms | Channel::WhatsApp => self.sms_text(issued.purpose, &issued.code),
                        Channel::Call => self.spoken_text(issued.purpose, &issued.code),
                    })
                }),
            },
            (Mode::Local(_), Channel::Sms) => Envelope::Sms(OutgoingSms {
                to: phone.clone(),
                body: SecretString::from(self.sms_text(issued.purpose, &issued.code)),
            }),
            (Mode::Local(_), Channel::WhatsApp) => Envelope::WhatsApp(OutgoingSms {
                to: phone.clone(),
                body: SecretString::from(self.sms_text(issued.purpose, &issued.code)),
            }),
            (Mode::Local(_), Channel::Call) => Envelope::Call(OutgoingCall {
                to: phone.clone(),
                spoken_text: SecretString::from(self.spoken_text(issued.purpose, &issued.code)),
            }),
        };
        Outgoing::Message(OutboxMessage {
            envelope,
            purpose: issued.purpose.as_str(),
            created_at: now,
            not_after: issued.expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::CodeLength;

    fn code() -> OtpCode {
        OtpCode::parse("1234", CodeLength::new(4).unwrap()).unwrap()
    }

    fn messenger(templates: MessageTemplates) -> Messenger {
        Messenger::new(
            Arc::new(crate::ports::MockSmsSender::new()),
            Arc::new(crate::ports::MockVoiceCaller::new()),
            "Acme".into(),
        )
        .with_templates(templates)
    }

    #[test]
    fn templates_fill_in_the_code_per_surface() {
        let mut templates = MessageTemplates::english();
        templates
            .sms_by_purpose
            .insert(Purpose::PhoneLogin, "{code} is your {app} login PIN".into());
        let messenger = messenger(templates);
        assert_eq!(messenger.sms_text(Purpose::PinAuth, &code()), "Your Acme code is 1234");
        assert_eq!(
            messenger.sms_text(Purpose::PhoneLogin, &code()),
            "1234 is your Acme login PIN"
        );
        assert_eq!(
            messenger.spoken_text(Purpose::PinAuth, &code()),
            "Your Acme code is 1, 2, 3, 4. Again, your code is 1, 2, 3, 4."
        );
    }

    #[test]
    fn templates_without_the_code_are_refused() {
        assert!(MessageTemplates::english().validate().is_ok());
        let mut templates = MessageTemplates::english();
        templates.sms = "Welcome to {app}".into();
        assert!(templates.validate().is_err());
        let mut templates = MessageTemplates::english();
        templates.voice_by_purpose.insert(Purpose::PhoneLogin, "Hello".into());
        assert!(templates.validate().is_err());
    }
}
