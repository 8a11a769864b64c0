//! The SMS API: one form-encoded `POST {sms_base_url}/sms/json` per text,
//! with the API key and secret in the body, as Vonage's "Send an SMS" and
//! "Sending an SMS with Unicode" snippets show
//! (<https://developer.vonage.com/en/messaging/sms/code-snippets/send-an-sms-with-unicode>).
//!
//! Vonage answers HTTP 200 even when it refuses a message: the answer lists
//! the parts the text was split into (`messages`), each with a `status`
//! string, `"0"` meaning accepted
//! (<https://developer.vonage.com/en/messaging/sms/guides/troubleshooting-sms>).

use phonegate_domain::ports::ProviderMessageId;
use serde::Deserialize;

use super::{
    error,
    http::{Answer, Failure, Refusal},
};

/// The form fields of one text, in Vonage's names. `to` and a numeric
/// `from` are written without their `+`, as Vonage wants them. `type` is
/// `unicode` when the text has a character outside the GSM 03.38 alphabet;
/// otherwise it is left to its default (`text`, GSM-7).
pub(super) fn form<'a>(
    api_key: &'a str,
    api_secret: &'a str,
    from: &'a str,
    to: &'a str,
    text: &'a str,
) -> Vec<(&'static str, &'a str)> {
    let mut form = vec![
        ("api_key", api_key),
        ("api_secret", api_secret),
        ("from", from.trim_start_matches('+')),
        ("to", to.trim_start_matches('+')),
        ("text", text),
    ];
    if !is_gsm7(text) {
        form.push(("type", "unicode"));
    }
    form
}

/// The SMS API's answer.
#[derive(Deserialize)]
struct SmsAnswer {
    messages: Vec<MessageStatus>,
}

#[derive(Deserialize)]
struct MessageStatus {
    status: String,
    #[serde(rename = "message-id")]
    message_id: Option<String>,
    #[serde(rename = "error-text")]
    error_text: Option<String>,
}

/// A text Vonage accepted.
#[derive(Debug)]
pub(super) struct Accepted {
    /// How many parts it was split into (0 when the answer did not say).
    pub(super) parts: usize,
    /// The first part's `message-id`, when the answer names one.
    pub(super) message_id: Option<ProviderMessageId>,
}

/// What Vonage's answer means: the parts accepted, or the
/// refusal of the first part that was not (a part refused means the user
/// does not get the whole code, so the text as a whole failed).
///
/// A 2xx without a readable list of statuses counts as accepted (no part
/// counted): Vonage answered success, and calling it a failure would hand
/// the text to the route's next provider, a duplicate the user sees every
/// time a proxy mangles the body. Any other HTTP status is read by
/// [`error::http_refusal`].
pub(super) fn outcome(answer: &Answer) -> Result<Accepted, Failure> {
    if !(200..300).contains(&answer.status) {
        return Err(Failure::Refused(error::http_refusal(
            answer.status,
            answer.retry_after,
            &answer.body,
        )));
    }
    let Some(parsed) = serde_json::from_slice::<SmsAnswer>(&answer.body)
        .ok()
        .filter(|parsed| !parsed.messages.is_empty())
    else {
        tracing::warn!(
            http_status = answer.status,
            "Vonage answered success without readable message statuses; counted as accepted"
        );
        return Ok(Accepted {
            parts: 0,
            message_id: None,
        });
    };
    match parsed.messages.iter().find(|message| message.status.trim() != "0") {
        None => Ok(Accepted {
            parts: parsed.messages.len(),
            message_id: parsed
                .messages
                .first()
                .and_then(|first| first.message_id.clone())
                .and_then(ProviderMessageId::new),
        }),
        Some(refused) => Err(Failure::Refused(Refusal {
            http_status: answer.status,
            vonage_status: Some(error::status_code(&refused.status)),
            problem: None,
            instance: None,
            error: error::sms_status(&refused.status, refused.error_text.as_deref()),
        })),
    }
}

/// The GSM 03.38 default alphabet (without the escape to the extension
/// table), which a `text` SMS can carry.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                          ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The GSM 03.38 extension table, reached by an escape (two septets each).
const GSM7_EXTENSION: &str = "\x0C^{}\\[~]|€";

/// Whether every character of `text` is in the GSM-7 alphabet. Most ASCII
/// is, but not all (a backtick is not), and some accented letters are.
fn is_gsm7(text: &str) -> bool {
    text.chars()
        .all(|c| GSM7_BASIC.contains(c) || GSM7_EXTENSION.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alphabet_is_complete() {
        // 128 septets less the escape.
        assert_eq!(GSM7_BASIC.chars().count(), 127);
        assert_eq!(GSM7_EXTENSION.chars().count(), 10);
    }

    #[test]
    fn unicode_is_asked_for_only_outside_gsm7() {
        assert!(is_gsm7(
            "Your Acme code is 482913. Ça marche à 0 €? [ok] {ü} É ~ ^ | \\"
        ));
        let fields = |text| {
            form("key", "secret", "+15005550006", "+14155550100", text)
                .into_iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("&")
        };
        assert_eq!(
            fields("Code 482913"),
            "api_key=key&api_secret=secret&from=15005550006&to=14155550100&text=Code 482913"
        );
        for text in [
            "Ваш код 482913",
            "code `482913`",
            "ça coûte",
            "验证码 482913",
            "code 482913 ✅",
        ] {
            assert!(fields(text).ends_with("&type=unicode"), "{text}");
        }
    }

    #[test]
    fn an_alphanumeric_sender_is_kept_as_is() {
        let fields = form("key", "secret", "Acme", "+14155550100", "x");
        assert_eq!(fields[2], ("from", "Acme"));
    }

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn every_part_must_be_accepted() {
        let ok = r#"{"message-count": "2", "messages": [{"status": "0", "message-id": "0A01"}, {"status": "0", "message-id": "0A02"}]}"#;
        let accepted = outcome(&answer(200, ok)).unwrap();
        assert_eq!(accepted.parts, 2);
        assert_eq!(
            accepted.message_id.as_ref().map(ProviderMessageId::as_str),
            Some("0A01")
        );
        let partial = r#"{"message-count": "2", "messages": [{"status": "0"}, {"status": "9", "error-text": "Quota Exceeded - rejected"}]}"#;
        let Err(Failure::Refused(refusal)) = outcome(&answer(200, partial)) else {
            panic!("a refused part fails the text");
        };
        assert_eq!(refusal.vonage_status.as_deref(), Some("9"));
        assert_eq!(refusal.metric_code(), "9");
    }

    #[test]
    fn an_unreadable_success_counts_as_accepted() {
        for body in ["", "<html>", r#"{"messages": []}"#, r#"{"messages": [{"status": 0}]}"#] {
            assert!(
                matches!(
                    outcome(&answer(200, body)),
                    Ok(Accepted {
                        parts: 0,
                        message_id: None
                    })
                ),
                "{body}"
            );
        }
    }
}
