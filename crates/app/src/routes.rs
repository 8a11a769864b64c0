//! The routes of `[sms]` and `[voice]`: checked into plans once (prefixes,
//! providers, senders), printed by `phonegate config check`, and built
//! into the domain's [`Routes`] when the service is wired.

use std::sync::Arc;

use anyhow::bail;
use phonegate_adapters::{plivo::PlivoClient, telnyx::TelnyxClient, vonage::VonageClient};
use phonegate_domain::{
    delivery::routes::{Hop, RoutePrefix, Routes},
    ports::Sender,
};

use crate::{
    providers::{RoutePlan, SmsChoice},
    settings::{RouteEntry, Settings, SmsProvider},
};

/// The checked routes of texts and calls.
pub(crate) struct Plans {
    pub(crate) sms: Vec<RoutePlan>,
    pub(crate) voice: Vec<RoutePlan>,
    pub(crate) warnings: Vec<String>,
}

/// Checks the routes of `settings`: prefixes, providers able to do what
/// the route is for, senders that parse, no prefix twice, and Twilio
/// Verify only at the head of the default route (the providers after it
/// send phonegate's own code when Verify cannot start), with no other
/// routes.
pub(crate) fn plan(settings: &Settings) -> anyhow::Result<Plans> {
    let mut warnings = Vec::new();
    let default_sms = settings.sms_default_route();
    let verify_named = |providers: &[SmsProvider]| providers.contains(&SmsProvider::TwilioVerify);
    let verify_elsewhere = default_sms.get(1..).is_some_and(verify_named)
        || settings.sms.routes.iter().any(|route| verify_named(&route.providers))
        || settings.voice.routes.iter().any(|route| verify_named(&route.providers))
        || verify_named(&settings.voice.providers);
    let hosted_with_routes =
        settings.hosted_codes() && (!settings.sms.routes.is_empty() || !settings.voice.routes.is_empty());
    if verify_elsewhere || hosted_with_routes {
        bail!(
            "sms.providers: \"twilio_verify\" makes and checks the codes itself, so it can only lead the default \
             route (the providers after it send phonegate's own code when Verify cannot start), with no other routes"
        );
    }
    let sender = |key: &str, text: &Option<String>| -> anyhow::Result<Option<Sender>> {
        text.as_deref()
            .map(|text| Sender::parse(text).map_err(|why| anyhow::anyhow!("{key}: {why}")))
            .transpose()
    };
    let mut sms = vec![RoutePlan {
        prefix: None,
        providers: default_sms,
        sender: sender("sms.sender", &settings.sms.sender)?,
    }];
    sms.extend(entries("sms.routes", &settings.sms.routes, |_| true)?);
    let voice_sender = sender("voice.sender", &settings.voice.sender)?;
    let voice_default = if settings.voice.providers.is_empty() {
        // Only those whose settings can place a call: Vonage needs its
        // Voice application and a number to call from.
        sms[0]
            .providers
            .iter()
            .copied()
            .filter(|provider| provider.places_calls() && calls_configured(settings, *provider, voice_sender.as_ref()))
            .collect()
    } else {
        settings.voice.providers.clone()
    };
    if let Some(bad) = voice_default.iter().find(|provider| !provider.places_calls()) {
        bail!("voice.providers: {} cannot place calls", bad.as_str());
    }
    if voice_default.is_empty() && !settings.voice.routes.is_empty() {
        bail!("voice.routes: calls to numbers no route matches need a default voice route too; set voice.providers");
    }
    let mut voice = vec![RoutePlan {
        prefix: None,
        providers: voice_default,
        sender: voice_sender,
    }];
    voice.extend(entries(
        "voice.routes",
        &settings.voice.routes,
        SmsProvider::places_calls,
    )?);
    if voice[0].providers.is_empty() && !settings.hosted_codes() {
        warnings.push(
            "no provider of the default route places calls: codes asked for by call wait in the outbox until they \
             expire (set voice.providers)"
                .to_owned(),
        );
    }
    for plan in &voice {
        if let Some(sender) = &plan.sender
            && !matches!(sender, Sender::Number(_))
        {
            bail!(
                "{}: calls come from a number, not {:?}",
                where_(plan, "voice"),
                sender.as_str()
            );
        }
    }
    for plan in &sms {
        if let Some(Sender::Alphanumeric(id)) = &plan.sender {
            match &plan.prefix {
                Some(prefix) if prefix.as_str().starts_with("+1") => bail!(
                    "sms.routes ({}): the United States and Canada refuse alphanumeric sender IDs such as {id:?}; \
                     use a number",
                    prefix.as_str()
                ),
                None => warnings.push(format!(
                    "sms.sender {id:?} is an alphanumeric sender ID on the default route: the United States, \
                     Canada and some other countries refuse them; give those a route with a number"
                )),
                Some(_) => {}
            }
        }
    }
    Ok(Plans { sms, voice, warnings })
}

/// The `[[sms.routes]]` or `[[voice.routes]]` entries, checked.
fn entries(key: &str, routes: &[RouteEntry], able: impl Fn(SmsProvider) -> bool) -> anyhow::Result<Vec<RoutePlan>> {
    let mut plans: Vec<RoutePlan> = Vec::new();
    for route in routes {
        let prefix = RoutePrefix::parse(&route.prefix).map_err(|why| anyhow::anyhow!("{key}: {why}"))?;
        if plans.iter().any(|plan| plan.prefix.as_ref() == Some(&prefix)) {
            bail!("{key}: the prefix {} has two routes", prefix.as_str());
        }
        if route.providers.is_empty() {
            bail!("{key} ({}): a route needs at least one provider", prefix.as_str());
        }
        if let Some(bad) = route.providers.iter().find(|provider| !able(**provider)) {
            bail!("{key} ({}): {} cannot place calls", prefix.as_str(), bad.as_str());
        }
        let sender = route
            .sender
            .as_deref()
            .map(|text| Sender::parse(text).map_err(|why| anyhow::anyhow!("{key} ({}): {why}", prefix.as_str())))
            .transpose()?;
        plans.push(RoutePlan {
            prefix: Some(prefix),
            providers: route.providers.clone(),
            sender,
        });
    }
    Ok(plans)
}

fn where_(plan: &RoutePlan, kind: &str) -> String {
    match &plan.prefix {
        Some(prefix) => format!("{kind}.routes ({})", prefix.as_str()),
        None => format!("{kind}.sender"),
    }
}

/// Whether `provider`'s settings can place a call from `sender` (the
/// route's) or its own sender: Vonage needs its Voice API application and
/// key, and every provider a number to call from.
fn calls_configured(settings: &Settings, provider: SmsProvider, sender: Option<&Sender>) -> bool {
    let number = |text: Option<&String>| text.is_some_and(|text| matches!(Sender::parse(text), Ok(Sender::Number(_))));
    let has_number = matches!(sender, Some(Sender::Number(_)));
    match provider {
        SmsProvider::Vonage => {
            settings.vonage.application_id.is_some()
                && settings.vonage.private_key.is_some()
                && (has_number || number(settings.vonage.from.as_ref()))
        }
        SmsProvider::Twilio => has_number || settings.twilio.from_number.is_some(),
        _ => true,
    }
}

/// Checks that each provider of each route can send from the route's
/// sender, or has a sender of its own, and can place the calls of the
/// voice routes it is in.
pub(crate) fn check_senders(settings: &Settings, choice: &SmsChoice) -> anyhow::Result<()> {
    for plan in &choice.voice_routes {
        if let Some(provider) = plan
            .providers
            .iter()
            .find(|provider| !calls_configured(settings, **provider, plan.sender.as_ref()))
        {
            bail!(
                "{}: {} cannot place calls with these settings (Vonage needs vonage.application_id and \
                 vonage.private_key; every provider needs a number to call from: the route's sender, \
                 twilio.from_number or vonage.from)",
                where_(plan, "voice"),
                provider.as_str()
            );
        }
    }
    for (kind, plans) in [("sms", &choice.sms_routes), ("voice", &choice.voice_routes)] {
        for plan in plans.iter() {
            for provider in &plan.providers {
                match &plan.sender {
                    Some(sender) if !supports(*provider, sender) => bail!(
                        "{}: {} cannot send from {:?}",
                        where_(plan, kind),
                        provider.as_str(),
                        sender.as_str()
                    ),
                    None if !has_own_sender(settings, *provider) => bail!(
                        "{}: {} has no sender; set {} or give the route a sender",
                        where_(plan, kind),
                        provider.as_str(),
                        own_sender_key(*provider)
                    ),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// Whether `provider` can send from `sender`.
fn supports(provider: SmsProvider, sender: &Sender) -> bool {
    match provider {
        SmsProvider::Vonage => VonageClient::supports(sender),
        SmsProvider::Plivo => PlivoClient::supports(sender),
        SmsProvider::Telnyx => TelnyxClient::supports(sender),
        SmsProvider::Console
        | SmsProvider::Null
        | SmsProvider::Twilio
        | SmsProvider::TwilioVerify
        | SmsProvider::Http => true,
    }
}

fn has_own_sender(settings: &Settings, provider: SmsProvider) -> bool {
    match provider {
        SmsProvider::Twilio => settings.twilio.from_number.is_some() || settings.twilio.messaging_service_sid.is_some(),
        SmsProvider::Vonage => settings.vonage.from.is_some(),
        SmsProvider::Plivo => settings.plivo.from.is_some(),
        SmsProvider::Telnyx => settings.telnyx.from.is_some(),
        // Verify picks its own sender; the generic provider's receiver may
        // choose one itself; the console and null send nothing.
        SmsProvider::Console | SmsProvider::Null | SmsProvider::TwilioVerify | SmsProvider::Http => true,
    }
}

const fn own_sender_key(provider: SmsProvider) -> &'static str {
    match provider {
        SmsProvider::Vonage => "vonage.from",
        SmsProvider::Plivo => "plivo.from",
        SmsProvider::Telnyx => "telnyx.from",
        SmsProvider::Twilio => "twilio.from_number (or twilio.messaging_service_sid)",
        _ => "the provider's sender",
    }
}

/// The domain's routes from `plans`, each provider's client made by
/// `client` for the route's sender. A provider that cannot serve the kind
/// of message (no client) is left out of the route.
pub(crate) fn build<T: ?Sized>(
    plans: &[RoutePlan],
    mut client: impl FnMut(SmsProvider, Option<&Sender>) -> Option<Arc<T>>,
) -> Routes<T> {
    let mut hops_of = |plan: &RoutePlan| -> Vec<Hop<T>> {
        plan.providers
            .iter()
            .filter_map(|provider| {
                client(*provider, plan.sender.as_ref()).map(|client| Hop {
                    provider: provider.as_str(),
                    client,
                })
            })
            .collect()
    };
    let mut default = Vec::new();
    let mut by_prefix = Vec::new();
    for plan in plans {
        match &plan.prefix {
            None => default = hops_of(plan),
            Some(prefix) => by_prefix.push((prefix.clone(), hops_of(plan))),
        }
    }
    Routes::new(by_prefix, default)
}
