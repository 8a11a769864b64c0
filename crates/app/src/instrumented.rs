//! Provider decorators that time every call and count its failures, so
//! `/metrics` shows provider latency and errors whichever provider is
//! configured. They only observe: the call, its arguments and its result
//! pass through unchanged.

use std::{fmt, sync::Arc, time::Instant};

use async_trait::async_trait;
use phonegate_domain::{
    otp::{Channel, OtpCode},
    phone::PhoneNumber,
    ports::{
        DeliveryError, HostedCheck, HostedVerification, Mailer, MessageRef, Metrics, OutgoingCall, OutgoingMail,
        OutgoingSms, ProviderMessageId, SmsSender, VoiceCaller, WhatsAppSender,
    },
};

/// `inner`, timed and counted under `provider`.
pub struct Instrumented<T: ?Sized> {
    inner: Arc<T>,
    provider: &'static str,
    metrics: Arc<dyn Metrics>,
}

impl<T: ?Sized> Instrumented<T> {
    pub fn new(inner: Arc<T>, provider: &'static str, metrics: Arc<dyn Metrics>) -> Self {
        Self {
            inner,
            provider,
            metrics,
        }
    }

    /// Records how `operation` went after `started`.
    fn record<R>(&self, operation: &'static str, started: Instant, result: &Result<R, DeliveryError>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(error) => error.kind(),
        };
        self.metrics
            .provider_call(self.provider, operation, started.elapsed(), outcome);
    }
}

impl<T: ?Sized> fmt::Debug for Instrumented<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instrumented")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<T: SmsSender + ?Sized> SmsSender for Instrumented<T> {
    async fn send_sms(&self, message: &OutgoingSms) -> Result<(), DeliveryError> {
        let started = Instant::now();
        let result = self.inner.send_sms(message).await;
        self.record("send_sms", started, &result);
        result
    }

    async fn send_queued_sms(
        &self,
        message: &OutgoingSms,
        queued: MessageRef,
    ) -> Result<Option<ProviderMessageId>, DeliveryError> {
        let started = Instant::now();
        let result = self.inner.send_queued_sms(message, queued).await;
        self.record("send_sms", started, &result);
        result
    }
}

#[async_trait]
impl<T: WhatsAppSender + ?Sized> WhatsAppSender for Instrumented<T> {
    async fn send_whatsapp(
        &self,
        message: &OutgoingSms,
        queued: MessageRef,
    ) -> Result<Option<ProviderMessageId>, DeliveryError> {
        let started = Instant::now();
        let result = self.inner.send_whatsapp(message, queued).await;
        self.record("send_whatsapp", started, &result);
        result
    }
}

#[async_trait]
impl<T: VoiceCaller + ?Sized> VoiceCaller for Instrumented<T> {
    async fn call(&self, call: &OutgoingCall) -> Result<(), DeliveryError> {
        let started = Instant::now();
        let result = self.inner.call(call).await;
        self.record("call", started, &result);
        result
    }

    async fn place_queued_call(&self, call: &OutgoingCall, queued: MessageRef) -> Result<(), DeliveryError> {
        let started = Instant::now();
        let result = self.inner.place_queued_call(call, queued).await;
        self.record("call", started, &result);
        result
    }
}

#[async_trait]
impl<T: HostedVerification + ?Sized> HostedVerification for Instrumented<T> {
    async fn start(&self, to: &PhoneNumber, channel: Channel, locale: &str) -> Result<(), DeliveryError> {
        let started = Instant::now();
        let result = self.inner.start(to, channel, locale).await;
        self.record("verify_start", started, &result);
        result
    }

    async fn check(&self, to: &PhoneNumber, code: &OtpCode) -> Result<HostedCheck, DeliveryError> {
        let started = Instant::now();
        let result = self.inner.check(to, code).await;
        self.record("verify_check", started, &result);
        result
    }
}

#[async_trait]
impl<T: Mailer + ?Sized> Mailer for Instrumented<T> {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), DeliveryError> {
        let started = Instant::now();
        let result = self.inner.send(mail).await;
        self.record("send_mail", started, &result);
        result
    }
}
