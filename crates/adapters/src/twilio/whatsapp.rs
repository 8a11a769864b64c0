//! WhatsApp through Twilio's Messages API: the same request as a text,
//! with WhatsApp addresses (`To=whatsapp:+…`, `From=whatsapp:+…`).

use async_trait::async_trait;
use phonegate_domain::ports::{DeliveryError, MessageRef, OutgoingSms, ProviderMessageId, Sender, WhatsAppSender};
use secrecy::ExposeSecret as _;
use serde::Deserialize;

use super::{Operation, TwilioClient};

/// Whether `text` is a number in E.164: `+` and 8 to 15 digits.
pub(super) fn is_e164(text: &str) -> bool {
    text.strip_prefix('+')
        .is_some_and(|digits| (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// The part of a Messages answer we read: the message's SID, which its
/// status callbacks name.
#[derive(Deserialize)]
struct Created {
    sid: Option<String>,
}

impl TwilioClient {
    /// Whether this client can send WhatsApp messages: it has a WhatsApp
    /// sender, or a Messaging Service (which may hold one).
    pub fn sends_whatsapp(&self) -> bool {
        let settings = &self.inner.settings;
        settings.whatsapp_from.is_some() || settings.messaging_service_sid.is_some()
    }
}

#[async_trait]
impl WhatsAppSender for TwilioClient {
    async fn send_whatsapp(
        &self,
        message: &OutgoingSms,
        queued: MessageRef,
    ) -> Result<Option<ProviderMessageId>, DeliveryError> {
        let _ = queued;
        let operation = Operation::SendWhatsApp;
        let settings = &self.inner.settings;
        // The WhatsApp sender is a number of its own, registered with
        // WhatsApp: a route's SMS sender (an alphanumeric ID, another
        // number) is not one, so only a route's Messaging Service is used.
        let service = match &self.sender {
            Some(Sender::MessagingService(service)) => Some(service),
            _ => settings.messaging_service_sid.as_ref(),
        };
        let from = settings.whatsapp_from.as_deref().map(|from| format!("whatsapp:{from}"));
        let sender = match (&from, service) {
            (Some(from), _) => ("From", from.as_str()),
            (None, Some(service)) => ("MessagingServiceSid", service.as_str()),
            (None, None) => return Err(Self::missing_setting(operation, "whatsapp_from")),
        };
        let to = format!("whatsapp:{}", message.to.as_str());
        let body = message.body.expose_secret();
        let mut form = vec![("To", to.as_str()), sender, ("Body", body)];
        // Receipts for WhatsApp messages come to the same endpoint as texts'.
        if let Some(callback) = settings.status_callback.as_deref() {
            form.push(("StatusCallback", callback));
        }
        let answer = self
            .post_form(operation, &self.inner.messages_url, &form, &[body])
            .await
            .map_err(|failure| self.delivery_error(operation, failure))?;
        tracing::debug!(operation = operation.as_str(), "Twilio accepted the WhatsApp message");
        Ok(serde_json::from_slice::<Created>(&answer)
            .ok()
            .and_then(|created| created.sid)
            .and_then(ProviderMessageId::new))
    }
}
