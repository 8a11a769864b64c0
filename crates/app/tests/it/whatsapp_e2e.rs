//! WhatsApp with the real binary against a fake Twilio (issue 17): a
//! surface whose `channel` is `whatsapp` sends its code as a Messages
//! request with `whatsapp:` addresses, and when Twilio answers that the
//! number is not a WhatsApp user (63003), the same code arrives by SMS.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use phonegate_adapters::testing::{TestBackend, TestDatabase};
use serde_json::json;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::method};

use crate::providers_e2e::{base, common_settings, register, start, twilio_settings};

const WHATSAPP_FROM: &str = "+14155238886";
const NOT_ON_WHATSAPP: &str = "+12063720177";
const ON_WHATSAPP: &str = "+12063720178";

/// Twilio's Messages API as it answers WhatsApp: accepted, except for
/// `NOT_ON_WHATSAPP`, which has no WhatsApp account.
struct FakeTwilio;

impl Respond for FakeTwilio {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let form = form(request);
        if form.get("To").map(String::as_str) == Some(&format!("whatsapp:{NOT_ON_WHATSAPP}")) {
            return ResponseTemplate::new(400).set_body_json(json!({
                "code": 63003,
                "message": "Channel could not find To address",
                "more_info": "https://www.twilio.com/docs/errors/63003",
                "status": 400,
            }));
        }
        ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1", "status": "queued"}))
    }
}

fn form(request: &Request) -> HashMap<String, String> {
    form_urlencoded::parse(&request.body).into_owned().collect()
}

/// The forms of the Messages requests for `number` (by SMS or WhatsApp),
/// once `count` of them arrived, waiting up to 10 s.
async fn messages_for(twilio: &MockServer, number: &str, count: usize) -> Vec<HashMap<String, String>> {
    let started = Instant::now();
    loop {
        let forms: Vec<_> = twilio
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|request| request.url.path().ends_with("/Messages.json"))
            .map(form)
            .filter(|form| form.get("To").is_some_and(|to| to.ends_with(number)))
            .collect();
        if forms.len() >= count {
            return forms;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{count} messages for {number} did not arrive: {forms:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_codes_fall_back_to_sms_for_numbers_not_on_whatsapp() {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(FakeTwilio)
        .mount(&twilio)
        .await;
    let database = TestDatabase::create(TestBackend::Sqlite).await;
    let settings = format!(
        "{}{}whatsapp_from = \"{WHATSAPP_FROM}\"\n\n[sms]\nprovider = \"twilio\"\n\n[otp.phone_verify]\nchannel = \"whatsapp\"\n",
        common_settings(&database.url),
        twilio_settings(&twilio),
    );
    let server = start(&settings);

    register(&base(&server), ON_WHATSAPP).await;
    let sent = messages_for(&twilio, ON_WHATSAPP, 1).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["To"], format!("whatsapp:{ON_WHATSAPP}"));
    assert_eq!(sent[0]["From"], format!("whatsapp:{WHATSAPP_FROM}"));
    assert!(sent[0]["Body"].starts_with("Your phonegate code is "), "the SMS words");

    register(&base(&server), NOT_ON_WHATSAPP).await;
    let tried = messages_for(&twilio, NOT_ON_WHATSAPP, 2).await;
    let (whatsapp, sms) = (&tried[0], &tried[1]);
    assert_eq!(whatsapp["To"], format!("whatsapp:{NOT_ON_WHATSAPP}"));
    assert_eq!(sms["To"], NOT_ON_WHATSAPP, "the fallback is a plain SMS");
    assert_eq!(sms["From"], "+15005550006", "from the SMS sender");
    assert_eq!(sms["Body"], whatsapp["Body"], "the same code");
    // No third send: the row is the SMS now, and it was delivered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(messages_for(&twilio, NOT_ON_WHATSAPP, 2).await.len(), 2);
    let metrics = reqwest::get(format!("{}/metrics", base(&server)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"phonegate_channel_fallbacks_total{from="whatsapp",to="sms"} 1"#),
        "{metrics}"
    );
}
