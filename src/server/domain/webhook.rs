//! Webhooks as data: the body of a delivery (`{id, type, workspaceId, occurredAt, data}`, never a
//! value), its signature header (`Loopstack-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "t.body">`) and how a receiver checks it, the events an endpoint may subscribe to, and the
//! retry schedule.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

use crate::server::error::AppError;

/// The header a delivery is signed in.
pub const SIGNATURE_HEADER: &str = "Loopstack-Signature";
/// How old a signature a receiver should accept at most (the README's check uses it).
pub const TOLERANCE_SECS: i64 = 300;
/// How long a delivery is retried after its event.
pub const RETRY_FOR: chrono::Duration = chrono::Duration::hours(24);

/// How webhooks are sent (configurable): hosts allowed to resolve to internal addresses, and the
/// first retry's delay.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub allow_hosts: Vec<String>,
    pub retry_base: std::time::Duration,
}

/// The events an endpoint can subscribe to.
pub const EVENT_TYPES: &[&str] =
    &["secret.upserted", "secret.deleted", "workflow.updated", "token.created", "token.revoked", "member.changed"];

/// The events an endpoint subscribes to: known names, at least one, each once, in the order of
/// [`EVENT_TYPES`].
pub fn parse_events(events: &[String]) -> Result<Vec<&'static str>, AppError> {
    if events.is_empty() {
        return Err(AppError::BadRequest(format!("events must name at least one of {}", EVENT_TYPES.join(", "))));
    }
    if let Some(unknown) = events.iter().find(|e| !EVENT_TYPES.contains(&e.as_str())) {
        let unknown: String = unknown.chars().take(60).collect();
        return Err(AppError::BadRequest(format!("unknown event '{unknown}'; known: {}", EVENT_TYPES.join(", "))));
    }
    Ok(EVENT_TYPES.iter().copied().filter(|known| events.iter().any(|e| e == known)).collect())
}

/// The endpoint's URL: http or https, with a host, no credentials, at most 2,000 characters.
pub fn parse_url(raw: &str) -> Result<url::Url, AppError> {
    let bad = |why: &str| AppError::BadRequest(format!("url {why}"));
    if raw.len() > 2000 {
        return Err(bad("must be at most 2000 characters"));
    }
    let url = url::Url::parse(raw.trim()).map_err(|_| bad("must be an absolute http or https URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(bad("must be an absolute http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    Ok(url)
}

/// The JSON body POSTed for an event: the event's fields (ids, keys, states; never a value)
/// under `data`.
pub fn body(event_id: Uuid, occurred_at: DateTime<Utc>, event: &Value) -> String {
    let mut data = event.clone();
    let (kind, workspace_id) = match data.as_object_mut() {
        Some(fields) => {
            (fields.remove("type").unwrap_or(Value::Null), fields.remove("workspaceId").unwrap_or(Value::Null))
        }
        None => (Value::Null, Value::Null),
    };
    json!({
        "id": event_id,
        "type": kind,
        "workspaceId": workspace_id,
        "occurredAt": occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    })
    .to_string()
}

/// The signature header's value for `body` sent at `t` (unix seconds).
pub fn signature(secret: &[u8], t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("BUG: HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// What a receiver does: the header names a time within [`TOLERANCE_SECS`] of `now` and a `v1`
/// that is the HMAC of `"t.body"` (compared in constant time).
pub fn verify(secret: &[u8], header: &str, body: &str, now: i64) -> bool {
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let Some(t) = t.filter(|t| (now - t).abs() <= TOLERANCE_SECS) else { return false };
    let expected = signature(secret, t, body);
    let expected = expected.rsplit_once("v1=").map(|(_, hex)| hex).unwrap_or_default();
    signatures.iter().any(|candidate| subtle::ConstantTimeEq::ct_eq(candidate.as_bytes(), expected.as_bytes()).into())
}

/// How long to wait after failed attempt number `attempts` (from 1): `base` doubled each time,
/// at most an hour.
pub fn retry_delay(base: std::time::Duration, attempts: i32) -> chrono::Duration {
    let factor = 1u32 << attempts.clamp(1, 16).saturating_sub(1);
    let delay = base.saturating_mul(factor).min(std::time::Duration::from_secs(3600));
    chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_secret_body_and_time() {
        let body = body(
            Uuid::nil(),
            Utc::now(),
            &json!({"type": "secret.deleted", "workspaceId": Uuid::nil(), "secretId": Uuid::nil()}),
        );
        let header = signature(b"whsec_a", 1_700_000_000, &body);
        assert!(verify(b"whsec_a", &header, &body, 1_700_000_100));
        assert!(!verify(b"whsec_b", &header, &body, 1_700_000_100), "another secret");
        assert!(!verify(b"whsec_a", &header, &format!("{body} "), 1_700_000_100), "another body");
        assert!(!verify(b"whsec_a", &header, &body, 1_700_000_000 + TOLERANCE_SECS + 1), "too old");
        assert!(!verify(b"whsec_a", "t=1700000000", &body, 1_700_000_000), "no signature");
        let parsed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["type"], "secret.deleted");
        assert_eq!(parsed["data"], json!({"secretId": Uuid::nil()}));
    }

    #[test]
    fn events_and_urls_are_checked() {
        assert_eq!(
            parse_events(&["secret.deleted".into(), "secret.upserted".into()]).unwrap(),
            ["secret.upserted", "secret.deleted"]
        );
        assert!(parse_events(&[]).is_err());
        assert!(parse_events(&["secret.read".into()]).is_err());
        assert!(parse_url("https://hooks.example.com/x").is_ok());
        for bad in ["ftp://x", "/relative", "https://user:pw@example.com", "https://"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        let base = std::time::Duration::from_secs(10);
        assert_eq!(retry_delay(base, 1), chrono::Duration::seconds(10));
        assert_eq!(retry_delay(base, 3), chrono::Duration::seconds(40));
        assert_eq!(retry_delay(base, 30), chrono::Duration::hours(1));
    }
}
