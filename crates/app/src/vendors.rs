//! The clients of the SMS and voice vendors besides Twilio (`[vonage]`,
//! `[plivo]`, `[telnyx]`, `[http_provider]`), built from their sections and
//! checked once; the error names the missing or bad key.

use std::time::Duration;

use anyhow::Context as _;
use phonegate_adapters::{
    http_provider::{HttpProvider, HttpProviderSettings},
    plivo::{PlivoClient, PlivoSettings},
    telnyx::{TelnyxClient, TelnyxSettings},
    vonage::{VonageClient, VonageSettings, VonageSignatureMethod},
    webhook_signature::WebhookSecret,
};
use phonegate_domain::ports::Sender;
use secrecy::ExposeSecret as _;

use crate::{receipts, settings::Settings};

/// A provider's own sender (`<section>.from`), parsed.
fn from(key: &str, text: Option<&String>) -> anyhow::Result<Option<Sender>> {
    text.map(|text| Sender::parse(text).map_err(|why| anyhow::anyhow!("{key}: {why}")))
        .transpose()
}

pub(crate) fn vonage(settings: &Settings) -> anyhow::Result<VonageClient> {
    let section = &settings.vonage;
    let key = section
        .api_key
        .clone()
        .context("vonage.api_key is required when a route names vonage")?;
    let secret = section
        .api_secret
        .clone()
        .context("vonage.api_secret is required when a route names vonage")?;
    let mut client = VonageSettings::new(key, secret);
    client.application_id = section.application_id.clone();
    client.private_key = section.private_key.clone();
    client.from = from("vonage.from", section.from.as_ref())?;
    client.sms_base_url = section.sms_base_url.clone();
    client.voice_base_url = section.voice_base_url.clone();
    client.voice_language = section.voice_language.clone();
    client.timeout = Duration::from_secs(section.timeout_seconds);
    client.receipt_url = receipts::public_url(settings)?.map(|url| receipts::callback_url(&url, "vonage"));
    client.signature_secret = section.signature_secret.clone();
    client.signature_method = vonage_signature_method(settings)?;
    VonageClient::new(client).map_err(|error| anyhow::anyhow!("[vonage]: {error}"))
}

/// `vonage.signature_method`, checked.
pub(crate) fn vonage_signature_method(settings: &Settings) -> anyhow::Result<VonageSignatureMethod> {
    let text = &settings.vonage.signature_method;
    text.parse().map_err(|_| {
        anyhow::anyhow!("vonage.signature_method = {text:?} is not one of md5hash, md5, sha1, sha256, sha512")
    })
}

/// `http_provider.secret`, checked.
pub(crate) fn http_secret(settings: &Settings) -> anyhow::Result<WebhookSecret> {
    let secret = settings
        .http_provider
        .secret
        .as_ref()
        .context("http_provider.secret is required when a route names http")?;
    WebhookSecret::parse(secret.expose_secret()).map_err(|error| anyhow::anyhow!("http_provider.secret: {error}"))
}

pub(crate) fn plivo(settings: &Settings) -> anyhow::Result<PlivoClient> {
    let section = &settings.plivo;
    let id = section
        .auth_id
        .clone()
        .context("plivo.auth_id is required when a route names plivo")?;
    let token = section
        .auth_token
        .clone()
        .context("plivo.auth_token is required when a route names plivo")?;
    let mut client = PlivoSettings::new(id, token);
    client.from = from("plivo.from", section.from.as_ref())?;
    client.base_url = section.base_url.clone();
    client.timeout = Duration::from_secs(section.timeout_seconds);
    PlivoClient::new(client).map_err(|error| anyhow::anyhow!("[plivo]: {error}"))
}

pub(crate) fn telnyx(settings: &Settings) -> anyhow::Result<TelnyxClient> {
    let section = &settings.telnyx;
    let key = section
        .api_key
        .clone()
        .context("telnyx.api_key is required when a route names telnyx")?;
    let mut client = TelnyxSettings::new(key);
    client.messaging_profile_id = section.messaging_profile_id.clone();
    client.from = from("telnyx.from", section.from.as_ref())?;
    client.base_url = section.base_url.clone();
    client.timeout = Duration::from_secs(section.timeout_seconds);
    TelnyxClient::new(client).map_err(|error| anyhow::anyhow!("[telnyx]: {error}"))
}

pub(crate) fn http(settings: &Settings) -> anyhow::Result<HttpProvider> {
    let section = &settings.http_provider;
    let url = section
        .url
        .clone()
        .context("http_provider.url is required when a route names http")?;
    let mut client = HttpProviderSettings::new(url, http_secret(settings)?);
    client.from = from("http_provider.from", section.from.as_ref())?;
    client.locale = section.locale.clone();
    client.timeout = Duration::from_secs(section.timeout_seconds);
    HttpProvider::new(client).map_err(|error| anyhow::anyhow!("[http_provider]: {error}"))
}
