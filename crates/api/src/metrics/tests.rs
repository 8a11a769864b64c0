use super::*;

fn registry() -> Registry {
    Registry::new(DeliveryProviders {
        sms: "twilio",
        mail: "smtp",
    })
}

fn open_metrics(registry: &Registry) -> String {
    Exposition::open_metrics(registry, Scrape::default()).into_body()
}

#[test]
fn deliveries_are_counted_by_surface_channel_and_provider() {
    let registry = registry();
    registry.delivery("pin_auth", "sms", None, "sent");
    registry.delivery("pin_auth", "sms", None, "sent");
    registry.delivery("phone_login", "call", None, "sent");
    registry.delivery("password_reset", "mail", None, "sent");
    registry.delivery("pin_auth", "sms", None, "retry");
    let text = open_metrics(&registry);
    for line in [
        "phonegate_messages_sent_total{surface=\"pin_auth\",channel=\"sms\",provider=\"twilio\"} 2",
        "phonegate_messages_sent_total{surface=\"phone_login\",channel=\"call\",provider=\"twilio\"} 1",
        "phonegate_messages_sent_total{surface=\"password_reset\",channel=\"mail\",provider=\"smtp\"} 1",
        "phonegate_delivery_failures_total{surface=\"pin_auth\",channel=\"sms\",provider=\"twilio\",outcome=\"retry\"} 1",
    ] {
        assert!(text.lines().any(|sample| sample == line), "{line} in\n{text}");
    }
}

#[test]
fn histograms_render_cumulative_buckets_sum_and_count() {
    let registry = registry();
    registry.provider_call("twilio", "send_sms", Duration::from_millis(30), "ok");
    registry.provider_call("twilio", "send_sms", Duration::from_millis(700), "unavailable");
    registry.provider_call("twilio", "send_sms", Duration::from_secs(60), "unavailable");
    let text = open_metrics(&registry);
    let bucket = |le: &str| {
        sample(
            &text,
            "phonegate_provider_request_duration_seconds_bucket",
            &[("provider", "twilio"), ("operation", "send_sms"), ("le", le)],
        )
    };
    assert_eq!(bucket("0.025"), Some("0"), "{text}");
    assert_eq!(bucket("0.05"), Some("1"), "{text}");
    assert_eq!(bucket("1"), Some("2"), "{text}");
    assert_eq!(bucket("30"), Some("2"), "{text}");
    assert_eq!(bucket("+Inf"), Some("3"), "{text}");
    assert!(
        text.contains(
            "phonegate_provider_request_duration_seconds_count{provider=\"twilio\",operation=\"send_sms\"} 3"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "phonegate_provider_errors_total{provider=\"twilio\",operation=\"send_sms\",error=\"unavailable\"} 2"
        ),
        "{text}"
    );
}

/// The value of the sample `name{labels}` in `text`, in whatever order
/// its labels are written: the format gives the order no meaning, and
/// the client writes a bucket's `le` first.
fn sample<'t>(text: &'t str, name: &str, labels: &[(&str, &str)]) -> Option<&'t str> {
    let mut wanted: Vec<String> = labels.iter().map(|(key, value)| format!("{key}=\"{value}\"")).collect();
    wanted.sort();
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (sample_name, rest) = series.split_once('{')?;
        let mut found: Vec<&str> = rest.strip_suffix('}')?.split(',').collect();
        found.sort_unstable();
        (sample_name == name && found == wanted).then_some(value)
    })
}

#[test]
fn conversion_is_counted_by_provider_and_calling_code_with_the_pumping_guard() {
    let registry = registry();
    registry.code_sent("twilio", "44");
    registry.code_sent("twilio", "44");
    registry.code_delivered("twilio", "44");
    registry.code_verified("none", "33");
    registry.pumping_held("4479");
    registry.pumping_tripped("4479", true);
    let text = open_metrics(&registry);
    for line in [
        "phonegate_otp_sends_total{provider=\"twilio\",calling_code=\"44\"} 2",
        "phonegate_otp_deliveries_total{provider=\"twilio\",calling_code=\"44\"} 1",
        "phonegate_otp_verifications_total{provider=\"none\",calling_code=\"33\"} 1",
        "phonegate_pumping_held_total{prefix=\"4479\"} 1",
        "phonegate_pumping_tripped{prefix=\"4479\"} 1",
    ] {
        assert!(text.lines().any(|sample| sample == line), "{line} in\n{text}");
    }
}

#[test]
fn label_values_are_escaped() {
    let registry = registry();
    registry.provider_error_code("twilio", "send_sms", "x\"y\\z\n");
    let text = open_metrics(&registry);
    assert!(
        text.contains(
            "phonegate_provider_error_codes_total{provider=\"twilio\",operation=\"send_sms\",code=\"x\\\"y\\\\z\\n\"} 1"
        ),
        "{text}"
    );
}
