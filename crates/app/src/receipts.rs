//! Delivery receipts: the public URL providers call back, and a reader for
//! each configured provider that sends receipts.

use std::{collections::HashMap, sync::Arc};

use anyhow::bail;
use phonegate_api::receipts::ReceiptEndpoint;
use phonegate_domain::{
    delivery::{Messenger, Receipts},
    ports::{Clock, Metrics, ReceiptReader, ReceiptStore},
};

use anyhow::Context as _;
use phonegate_adapters::{http_provider::HttpReceiptReader, twilio::TwilioReceiptReader, vonage::VonageReceiptReader};

use crate::{
    settings::{Settings, SmsProvider},
    vendors,
};

/// `server.public_url` checked: an absolute http(s) URL with no query or
/// fragment, returned without its trailing slash; `None` when unset.
pub(crate) fn public_url(settings: &Settings) -> anyhow::Result<Option<String>> {
    let Some(text) = settings
        .server
        .public_url
        .as_deref()
        .filter(|text| !text.trim().is_empty())
    else {
        return Ok(None);
    };
    let Ok(url) = text.trim().parse::<axum::http::Uri>() else {
        bail!("server.public_url = {text:?} is not an absolute URL (https://auth.example.com)");
    };
    if !matches!(url.scheme_str(), Some("http" | "https")) || url.authority().is_none() {
        bail!("server.public_url = {text:?} must be an absolute http(s) URL (https://auth.example.com)");
    }
    if url.query().is_some() || text.contains('#') {
        bail!("server.public_url = {text:?} must not have a query or fragment");
    }
    Ok(Some(text.trim().trim_end_matches('/').to_owned()))
}

/// The URL `provider` posts its receipts to, under `public_url`.
pub(crate) fn callback_url(public_url: &str, provider: &str) -> String {
    format!("{public_url}/receipts/{provider}")
}

/// What the receipt endpoint is built from.
pub(crate) struct ReceiptParts {
    pub store: Arc<dyn ReceiptStore>,
    pub messenger: Messenger,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<dyn Metrics>,
    /// Each provider's reader, by its configured name.
    pub readers: HashMap<&'static str, Arc<dyn ReceiptReader>>,
}

/// The receipt endpoint, when `server.public_url` is set and a provider
/// in use sends receipts.
pub(crate) fn endpoint(public_url: Option<String>, parts: ReceiptParts) -> Option<Arc<ReceiptEndpoint>> {
    let public_url = public_url?;
    if parts.readers.is_empty() {
        return None;
    }
    let receipts = Receipts::new(parts.store, parts.messenger, parts.clock).with_metrics(parts.metrics.clone());
    Some(Arc::new(ReceiptEndpoint {
        receipts,
        readers: parts.readers,
        public_url,
        metrics: parts.metrics,
    }))
}

/// A receipt reader for each provider in use that sends receipts (Twilio,
/// Vonage, the generic provider), by its configured name; none without
/// `server.public_url`, since no provider is then told where to send them.
pub(crate) fn readers(
    settings: &Settings,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<HashMap<&'static str, Arc<dyn ReceiptReader>>> {
    let mut readers: HashMap<&'static str, Arc<dyn ReceiptReader>> = HashMap::new();
    if public_url(settings)?.is_none() {
        return Ok(readers);
    }
    for provider in settings.providers_in_use() {
        let name = provider.as_str();
        let reader: Arc<dyn ReceiptReader> = match provider {
            SmsProvider::Twilio => {
                let token = settings
                    .twilio
                    .auth_token
                    .clone()
                    .context("twilio.auth_token is required with a Twilio provider")?;
                Arc::new(TwilioReceiptReader::new(name, token))
            }
            SmsProvider::Vonage => Arc::new(
                VonageReceiptReader::new(
                    name,
                    settings.vonage.signature_secret.clone(),
                    vendors::vonage_signature_method(settings)?,
                )
                .with_clock(Arc::clone(clock)),
            ),
            SmsProvider::Http => {
                Arc::new(HttpReceiptReader::new(name, vendors::http_secret(settings)?).with_clock(Arc::clone(clock)))
            }
            // Verify has no per-message receipts; Plivo's and Telnyx's are
            // not taken yet, and the console and null providers send none.
            SmsProvider::TwilioVerify
            | SmsProvider::Plivo
            | SmsProvider::Telnyx
            | SmsProvider::Console
            | SmsProvider::Null => continue,
        };
        readers.insert(name, reader);
    }
    Ok(readers)
}
