//! A minimal HTTP/1 client for the admin endpoints.

use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Sends `req` and reads the answer within `limit`; `None` when nothing answers.
async fn send(
    req: axum::http::Request<Full<axum::body::Bytes>>,
    limit: std::time::Duration,
) -> Option<(u16, String)> {
    let client: Client<_, Full<axum::body::Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let res = tokio::time::timeout(limit, client.request(req))
        .await
        .ok()?
        .ok()?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// GETs `url`; `None` when nothing answers.
pub async fn get(url: &str) -> Option<(u16, String)> {
    let req = axum::http::Request::get(url).body(Full::default()).ok()?;
    send(req, std::time::Duration::from_secs(5)).await
}

/// POSTs `body` with `headers`; `None` when nothing answers.
pub async fn post(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Option<(u16, String)> {
    let mut req = axum::http::Request::post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(axum::body::Bytes::from(body))).ok()?;
    send(req, std::time::Duration::from_secs(10)).await
}

/// PUTs `body` (plain text); `None` when nothing answers.
pub async fn put(url: &str, body: &str) -> Option<(u16, String)> {
    let req = axum::http::Request::put(url)
        .header("content-type", "text/plain")
        .body(Full::new(axum::body::Bytes::from(body.to_owned())))
        .ok()?;
    send(req, std::time::Duration::from_secs(10)).await
}
