//! Delivering codes to people: the texts, and the choice of SMS or call.

use std::{fmt, sync::Arc};

use secrecy::SecretString;

use crate::{
    otp::{Channel, IssuedCode, OtpCode},
    phone::PhoneNumber,
    ports::{DeliveryError, OutgoingCall, OutgoingSms, SmsSender, VoiceCaller},
};

/// Sends codes by SMS or voice call, in the deployment's words.
#[derive(Clone)]
pub struct Messenger {
    sms: Arc<dyn SmsSender>,
    voice: Arc<dyn VoiceCaller>,
    app_name: String,
}

impl fmt::Debug for Messenger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Messenger")
            .field("app_name", &self.app_name)
            .finish_non_exhaustive()
    }
}

impl Messenger {
    pub fn new(sms: Arc<dyn SmsSender>, voice: Arc<dyn VoiceCaller>, app_name: String) -> Self {
        Self { sms, voice, app_name }
    }

    /// "Your phonegate code is 1234".
    pub fn sms_text(&self, code: &OtpCode) -> String {
        format!("Your {} code is {}", self.app_name, code.expose())
    }

    /// The code read digit by digit, twice, so it can be written down:
    /// "Your phonegate code is 1, 2, 3, 4. Again, your code is 1, 2, 3, 4."
    pub fn spoken_text(&self, code: &OtpCode) -> String {
        let digits = code.expose().chars().map(String::from).collect::<Vec<_>>().join(", ");
        format!("Your {} code is {digits}. Again, your code is {digits}.", self.app_name)
    }

    /// Sends `issued` to `phone` over `channel`; a test number gets nothing.
    pub async fn deliver(
        &self,
        phone: &PhoneNumber,
        channel: Channel,
        issued: &IssuedCode,
    ) -> Result<(), DeliveryError> {
        if issued.test_number {
            return Ok(());
        }
        match channel {
            Channel::Sms => {
                self.sms
                    .send_sms(&OutgoingSms {
                        to: phone.clone(),
                        body: SecretString::from(self.sms_text(&issued.code)),
                    })
                    .await
            }
            Channel::Call => {
                self.voice
                    .call(&OutgoingCall {
                        to: phone.clone(),
                        spoken_text: SecretString::from(self.spoken_text(&issued.code)),
                    })
                    .await
            }
        }
    }
}
