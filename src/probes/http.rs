//! A small HTTP GET client for probes: bounded in time and in body size, HTTP or HTTPS.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Largest body a probe reads (a `/metrics` page of a busy service fits easily).
const MAX_BODY: usize = 8 * 1024 * 1024;

#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

/// One answer: status, body and how long it took.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub latency: Duration,
}

impl HttpClient {
    /// # Errors
    /// When the system's TLS roots cannot be loaded.
    pub fn new() -> Result<Self, String> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("cannot load TLS roots: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// GETs `url` within `timeout`.
    ///
    /// # Errors
    /// A short reason: unreachable, timed out, or an unreadable body. Never the URL's
    /// query, which may carry a PromQL expression or a token.
    pub async fn get(&self, url: &url::Url, timeout: Duration) -> Result<Answer, String> {
        let started = Instant::now();
        let uri: http::Uri = url
            .as_str()
            .parse()
            .map_err(|_| "not a valid URL".to_owned())?;
        let work = async {
            let res = self.client.get(uri).await.map_err(|e| describe(&e))?;
            let status = res.status().as_u16();
            let body = Limited::new(res.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|_| format!("body unreadable or over {} MiB", MAX_BODY >> 20))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        let (status, body) = tokio::time::timeout(timeout, work).await.map_err(|_| {
            format!(
                "no answer within {}",
                crate::domain::args::format_duration(timeout)
            )
        })??;
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            latency: started.elapsed(),
        })
    }
}

fn describe(e: &hyper_util::client::legacy::Error) -> String {
    if e.is_connect() {
        "connection refused or unreachable".into()
    } else {
        "request failed".into()
    }
}
