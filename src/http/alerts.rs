//! `POST /alerts`: Alertmanager's webhook. A bearer token is required; the body is
//! size-limited and checked whole before anything is written; every refusal is a 4xx
//! with the reason. An accepted body is stored in the alert inbox and answered at once;
//! the intake loop ([`crate::engine::intake`]) applies it.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use secrecy::ExposeSecret;
use tracing::{debug, warn};

use super::AdminState;
use crate::domain::alert;
use crate::engine::incidents::DeskError;

/// Compares without stopping at the first differing byte, so timing says nothing about
/// how much of a guessed token was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn receive(
    State(state): State<AdminState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> (StatusCode, String) {
    let Some(token) = &state.alerts_token else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the alert webhook is not configured (set ODORBOT_ALERTS_TOKEN)\n".into(),
        );
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        None => return (StatusCode::UNAUTHORIZED, "missing bearer token\n".into()),
        Some(p) if !same(p.as_bytes(), token.expose_secret().as_bytes()) => {
            warn!("alert webhook called with a wrong token");
            return (StatusCode::FORBIDDEN, "wrong bearer token\n".into());
        }
        Some(_) => {}
    }
    let body = match body {
        Ok(b) => b,
        // The only limit the body meets is incidents.alerts_max_body_bytes: say it.
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return (
                e.status(),
                format!(
                    "the body is larger than {} bytes (incidents.alerts_max_body_bytes)\n",
                    state.alerts_max_body
                ),
            );
        }
        Err(e) => return (e.status(), format!("{}\n", e.body_text())),
    };
    let notification = match alert::parse(&body) {
        Ok(n) => n,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    if state.desk.incident_channel().is_none() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}\n", DeskError::NoChannel),
        );
    }
    // JSON is UTF-8, and the parser has checked it.
    let Ok(text) = std::str::from_utf8(&body) else {
        return (StatusCode::BAD_REQUEST, "the body is not UTF-8\n".into());
    };
    match state.intake.accept(&notification.group_key, text).await {
        Ok(id) => {
            debug!(group = %notification.group_key, inbox_id = id, alerts = notification.alerts.len(), "alert notification queued");
            (StatusCode::OK, "ok\n".into())
        }
        // Alertmanager retries on 5xx, which is what a store hiccup needs.
        Err(e) => {
            warn!(group = %notification.group_key, error = %e, "alert notification not stored");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot store the notification: {e}\n"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"secret-token", b"secret-token"));
        assert!(!same(b"secret-token", b"secret-tokeN"));
        assert!(!same(b"secret", b"secret-token"));
    }
}
