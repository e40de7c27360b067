//! A small HTTP GET client for probes: bounded in time and in body size, HTTP or HTTPS.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{Limit, ProbeError};

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
    pub fn new() -> Result<Self, ProbeError> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| ProbeError::Tls(format!("cannot load TLS roots: {e}")))?
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
    pub async fn get(&self, url: &url::Url, limit: Limit) -> Result<Answer, ProbeError> {
        let started = Instant::now();
        let uri: http::Uri = url
            .as_str()
            .parse()
            .map_err(|_| ProbeError::Protocol("not a valid URL".into()))?;
        let work = async {
            let res = self.client.get(uri).await.map_err(|e| describe(&e))?;
            let status = res.status().as_u16();
            let body = Limited::new(res.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|_| {
                    ProbeError::Protocol(format!("body unreadable or over {} MiB", MAX_BODY >> 20))
                })?
                .to_bytes();
            Ok::<_, ProbeError>((status, body))
        };
        let (status, body) = tokio::time::timeout(limit.after, work)
            .await
            .map_err(|_| limit.expired())??;
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            latency: started.elapsed(),
        })
    }
}

fn describe(e: &hyper_util::client::legacy::Error) -> ProbeError {
    if e.is_connect() {
        ProbeError::Unreachable
    } else {
        ProbeError::Protocol("request failed".into())
    }
}
