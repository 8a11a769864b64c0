//! WhatsApp as a channel: the surfaces whose texts go by WhatsApp
//! (`otp.<surface>.channel`) and the providers that carry it
//! (`[whatsapp] providers`), checked once.

use anyhow::bail;
use phonegate_domain::otp::Purpose;

use crate::settings::{Settings, SmsProvider, TextChannel};

/// Who carries WhatsApp, and for which surfaces.
#[derive(Debug, Clone, Default)]
pub(crate) struct WhatsAppPlan {
    /// The providers of WhatsApp messages with phonegate's own code, in
    /// order; empty with Twilio Verify, which sends its own.
    pub(crate) providers: Vec<SmsProvider>,
    /// The surfaces whose texts go by WhatsApp.
    pub(crate) purposes: Vec<Purpose>,
}

/// The surfaces' channels and the WhatsApp route. A surface on WhatsApp
/// needs a provider that can carry it (Twilio with a WhatsApp sender or a
/// Messaging Service, the generic provider, the console), or Twilio
/// Verify; one named in `[whatsapp] providers` must be able to.
pub(crate) fn plan(settings: &Settings) -> anyhow::Result<WhatsAppPlan> {
    let otp = &settings.otp;
    let surfaces = [
        ("pin_auth", Purpose::PinAuth, otp.pin_auth.channel),
        ("phone_verify", Purpose::PhoneVerify, otp.phone_verify.channel),
        ("phone_login", Purpose::PhoneLogin, otp.phone_login.channel),
        ("phone_confirm", Purpose::PhoneConfirm, otp.phone_confirm.channel),
    ];
    let on_whatsapp: Vec<(&str, Purpose)> = surfaces
        .into_iter()
        .filter(|(_, _, channel)| *channel == TextChannel::WhatsApp)
        .map(|(name, purpose, _)| (name, purpose))
        .collect();
    let named = &settings.whatsapp.providers;
    if let Some(bad) = named.iter().find(|provider| !carries(settings, **provider)) {
        bail!(
            "whatsapp.providers: {} cannot send WhatsApp messages (twilio needs twilio.whatsapp_from or \
             twilio.messaging_service_sid; http and console can; twilio_verify sends its own)",
            bad.as_str()
        );
    }
    let providers: Vec<SmsProvider> = if settings.hosted_codes() {
        Vec::new()
    } else if named.is_empty() {
        settings
            .sms_default_route()
            .into_iter()
            .filter(|provider| carries(settings, *provider))
            .collect()
    } else {
        named.clone()
    };
    if let Some((surface, _)) = on_whatsapp.first()
        && providers.is_empty()
        && !settings.hosted_codes()
    {
        bail!(
            "otp.{surface}.channel = \"whatsapp\": no provider can carry WhatsApp messages; set \
             twilio.whatsapp_from (with twilio on the default SMS route) or whatsapp.providers"
        );
    }
    Ok(WhatsAppPlan {
        providers,
        purposes: on_whatsapp.into_iter().map(|(_, purpose)| purpose).collect(),
    })
}

/// Whether `provider`'s settings let it send WhatsApp messages.
fn carries(settings: &Settings, provider: SmsProvider) -> bool {
    match provider {
        SmsProvider::Twilio => {
            settings.twilio.whatsapp_from.is_some() || settings.twilio.messaging_service_sid.is_some()
        }
        SmsProvider::Http | SmsProvider::Console => true,
        SmsProvider::TwilioVerify
        | SmsProvider::Vonage
        | SmsProvider::Plivo
        | SmsProvider::Telnyx
        | SmsProvider::Null => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::Config, settings::ConfigFile};

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, config::ConfigError> {
        let vars = vars.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned()));
        // An empty settings file, so only the defaults and `vars` count.
        let empty = std::env::temp_dir().join(format!("phonegate-whatsapp-{}.toml", std::process::id()));
        std::fs::write(&empty, "").unwrap();
        Settings::load_with_env(ConfigFile::Explicit(&empty), vars)
    }

    #[test]
    fn surfaces_send_texts_by_sms_unless_set_to_whatsapp() {
        let defaults = plan(&settings(&[]).unwrap()).unwrap();
        assert!(defaults.purposes.is_empty());
        assert_eq!(defaults.providers, [SmsProvider::Console]);
        let chosen = settings(&[("PHONEGATE__OTP__PIN_AUTH__CHANNEL", "whatsapp")]).unwrap();
        assert_eq!(plan(&chosen).unwrap().purposes, [Purpose::PinAuth]);
    }

    #[test]
    fn an_unknown_channel_is_refused_naming_the_key() {
        let error = settings(&[("PHONEGATE__OTP__PHONE_LOGIN__CHANNEL", "telegram")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("otp.phone_login.channel"), "{error}");
    }

    #[test]
    fn a_whatsapp_surface_needs_a_provider_that_carries_it() {
        let base = [
            ("PHONEGATE__SMS__PROVIDER", "twilio"),
            ("PHONEGATE__TWILIO__ACCOUNT_SID", "AC0123"),
            ("PHONEGATE__TWILIO__AUTH_TOKEN", "token"),
            ("PHONEGATE__TWILIO__FROM_NUMBER", "+15005550006"),
            (
                "PHONEGATE__AUTH__JWT_SECRET",
                "a-whatsapp-test-master-secret-0123456789",
            ),
            ("PHONEGATE__AUTH__JWT_HS256_KEY", "a-whatsapp-test-hs256-key-0123456789"),
            ("PHONEGATE__OTP__PHONE_VERIFY__CHANNEL", "whatsapp"),
        ];
        let error = Config::new(&settings(&base).unwrap()).unwrap_err().to_string();
        assert!(error.starts_with("otp.phone_verify.channel = \"whatsapp\""), "{error}");
        let mut with_sender = base.to_vec();
        with_sender.push(("PHONEGATE__TWILIO__WHATSAPP_FROM", "+14155238886"));
        let planned = plan(&settings(&with_sender).unwrap()).unwrap();
        assert_eq!(planned.providers, [SmsProvider::Twilio]);
        let mut vonage = settings(&with_sender).unwrap();
        vonage.whatsapp.providers = vec![SmsProvider::Vonage];
        let error = plan(&vonage).unwrap_err().to_string();
        assert!(error.starts_with("whatsapp.providers: vonage cannot"), "{error}");
    }
}
