//! WhatsApp through the generic provider: the same signed request with
//! `"channel": "whatsapp"`, and `{"error":"not_on_channel"}` understood.

use phonegate_domain::ports::{DeliveryError, WhatsAppSender as _};
use serde_json::json;
use wiremock::ResponseTemplate;

use super::{FROM, KEY, QUEUED, SMS_BODY, TO, json_body, provider, receiver, requests, signed_with, sms};

#[tokio::test]
async fn a_whatsapp_message_is_the_signed_request_on_the_whatsapp_channel() {
    let server = receiver(KEY, ResponseTemplate::new(202)).await;

    let id = provider(&server).send_whatsapp(&sms(), QUEUED).await.unwrap();

    assert_eq!(id.unwrap().as_str(), "msg_42");
    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    assert!(signed_with(&received[0], KEY));
    assert_eq!(
        json_body(&received[0]),
        json!({
            "id": "msg_42",
            "to": TO,
            "channel": "whatsapp",
            "body": SMS_BODY,
            "purpose": "pin_auth",
            "locale": "en",
            "from": FROM,
        })
    );
}

#[tokio::test]
async fn a_number_not_on_whatsapp_is_told_apart_from_an_invalid_one() {
    let server = receiver(
        KEY,
        ResponseTemplate::new(422).set_body_json(json!({"error": "not_on_channel"})),
    )
    .await;

    let error = provider(&server).send_whatsapp(&sms(), QUEUED).await.unwrap_err();

    assert!(matches!(error, DeliveryError::NotOnChannel), "{error:?}");
    assert_eq!(requests(&server).await.len(), 1);
}
