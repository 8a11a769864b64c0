//! `phonegate stats`: the conversion of codes per calling code and
//! provider over the last hour and the last day, read from the database
//! (so it covers every instance sharing it).

use std::time::Duration;

use phonegate_domain::{
    abuse::pumping::by_calling_code,
    ports::{ConversionRow, ConversionStore},
    time::Timestamp,
};
use serde_json::{Value, json};

/// The periods reported, by name.
const PERIODS: [(&str, Duration); 2] = [
    ("last_hour", Duration::from_secs(3600)),
    ("last_day", Duration::from_secs(86_400)),
];

/// `{"last_hour": [row…], "last_day": [row…]}`, each row a calling code and
/// provider with its sends, deliveries, verifications and conversion (the
/// verified share of the sends, in percent, one decimal).
pub async fn conversion_report(store: &dyn ConversionStore, now: Timestamp) -> anyhow::Result<Value> {
    let mut report = serde_json::Map::new();
    for (name, period) in PERIODS {
        let since = Timestamp::from_unix_millis(now.unix_millis() - period.as_millis() as i64);
        let rows = by_calling_code(store.conversion(since).await?);
        report.insert(name.to_owned(), Value::Array(rows.iter().map(row).collect()));
    }
    Ok(Value::Object(report))
}

fn row(row: &ConversionRow) -> Value {
    let conversion = if row.sent == 0 {
        Value::Null
    } else {
        json!((row.verified as f64 * 1000.0 / row.sent as f64).round() / 10.0)
    };
    json!({
        "calling_code": row.prefix,
        "provider": row.provider.as_deref().unwrap_or("none"),
        "sent": row.sent,
        "delivered": row.delivered,
        "verified": row.verified,
        "conversion_percent": conversion,
    })
}
