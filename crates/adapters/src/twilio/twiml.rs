//! The TwiML document a code call plays.

/// `<Response><Say language="…">…</Say></Response>` speaking `text` in
/// `language`. Both are escaped, because the text holds the configured
/// application name and a name such as "Smith & Sons" would otherwise make
/// the document invalid (and Twilio would refuse the call).
pub(super) fn say(language: &str, text: &str) -> String {
    format!(
        r#"<Response><Say language="{}">{}</Say></Response>"#,
        escape(language),
        escape(text)
    )
}

/// Escapes the five XML special characters, which is enough for both text
/// and double-quoted attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_attribute() {
        assert_eq!(
            say(r#"en"US"#, r#"A & B <c> 'd' "e""#),
            r#"<Response><Say language="en&quot;US">A &amp; B &lt;c&gt; &apos;d&apos; &quot;e&quot;</Say></Response>"#
        );
    }
}
