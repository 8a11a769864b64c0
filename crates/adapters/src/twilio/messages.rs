//! Texts through the Messages resource: one form POST per text, whose
//! answer (the new Message resource) names the message's `sid`, the id its
//! delivery receipts carry as `MessageSid`.

use async_trait::async_trait;
use phonegate_domain::ports::{DeliveryError, MessageRef, OutgoingSms, ProviderMessageId, Sender, SmsSender};
use secrecy::ExposeSecret as _;
use serde::Deserialize;

use super::{TwilioClient, http::Operation};

/// The part of a Message resource we read.
#[derive(Deserialize)]
struct MessageResource {
    sid: String,
}

impl TwilioClient {
    /// Sends one text and returns the message's `sid`, or `None` when
    /// Twilio's success answer does not name one.
    async fn send_text(&self, message: &OutgoingSms) -> Result<Option<ProviderMessageId>, DeliveryError> {
        let operation = Operation::SendSms;
        let settings = &self.inner.settings;
        let sender = match (&self.sender, &settings.messaging_service_sid, &settings.from_number) {
            (Some(Sender::MessagingService(service)), _, _) => ("MessagingServiceSid", service.as_str()),
            (Some(Sender::Number(from) | Sender::Alphanumeric(from)), _, _) => ("From", from.as_str()),
            (None, Some(service), _) => ("MessagingServiceSid", service.as_str()),
            (None, None, Some(from)) => ("From", from.as_str()),
            (None, None, None) => return Err(Self::missing_setting(operation, "from_number or messaging_service_sid")),
        };
        let body = message.body.expose_secret();
        let mut form = vec![("To", message.to.as_str()), sender, ("Body", body)];
        // Twilio POSTs the message's status changes to this URL, signed
        // with the auth token; without it no receipt comes.
        if let Some(callback) = settings.status_callback.as_deref() {
            form.push(("StatusCallback", callback));
        }
        let answer = self
            .post_form(operation, &self.inner.messages_url, &form, &[body])
            .await
            .map_err(|failure| self.delivery_error(operation, failure))?;
        tracing::debug!(operation = operation.as_str(), "Twilio accepted the message");
        // Twilio has accepted the text, so an answer without a readable sid
        // is still a success: failing would send the code a second time.
        // The text just gets no receipt.
        let sid = serde_json::from_slice::<MessageResource>(&answer)
            .ok()
            .and_then(|resource| ProviderMessageId::new(resource.sid));
        if sid.is_none() {
            tracing::warn!(
                operation = operation.as_str(),
                "Twilio accepted the message without a readable sid; its receipts cannot be matched"
            );
        }
        Ok(sid)
    }
}

#[async_trait]
impl SmsSender for TwilioClient {
    async fn send_sms(&self, message: &OutgoingSms) -> Result<(), DeliveryError> {
        self.send_text(message).await.map(|_| ())
    }

    /// The message's `sid` is the id its receipts name.
    async fn send_queued_sms(
        &self,
        message: &OutgoingSms,
        queued: MessageRef,
    ) -> Result<Option<ProviderMessageId>, DeliveryError> {
        let _ = queued;
        self.send_text(message).await
    }
}
