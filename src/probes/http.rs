//! The probes' HTTP GET client (reqwest over rustls with ring and the system's roots):
//! one pooled client for Prometheus, the `/metrics` scrape and `/health`/`/ready`, bounded
//! in time and in body size.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::{Limit, ProbeError};
use crate::netcause::tls as tls_cause;

/// Largest body a probe reads (a `/metrics` page of a busy service fits easily).
const MAX_BODY: usize = 8 * 1024 * 1024;

#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
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
    /// When the system's TLS roots cannot be loaded or the client cannot be built.
    pub fn new() -> Result<Self, ProbeError> {
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = found
                .errors
                .first()
                .map_or_else(|| "none found".to_owned(), ToString::to_string);
            return Err(ProbeError::Tls(format!("cannot load TLS roots: {why}")));
        }
        let tls = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| ProbeError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(concat!("odorbot/", env!("CARGO_PKG_VERSION")))
            // A probe reports what it was answered, a redirect included, and never asks a
            // proxy: the services it probes are the cluster's own.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .pool_max_idle_per_host(2)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ProbeError::Tls(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { client })
    }

    /// GETs `url` within `limit`, body included.
    ///
    /// # Errors
    /// The cause: unreachable, TLS, timed out, or an unreadable or oversized body. Never
    /// the URL's query, which may carry a PromQL expression or a token.
    pub async fn get(&self, url: &url::Url, limit: Limit) -> Result<Answer, ProbeError> {
        let started = Instant::now();
        let work = async {
            let mut res = self
                .client
                .get(url.as_str())
                .timeout(limit.after)
                .send()
                .await
                .map_err(|e| describe(&e, limit))?;
            let status = res.status().as_u16();
            let too_large = || ProbeError::Protocol(format!("a body over {} MiB", MAX_BODY >> 20));
            if res.content_length().is_some_and(|n| n > MAX_BODY as u64) {
                return Err(too_large());
            }
            let mut body = Vec::new();
            while let Some(chunk) = res.chunk().await.map_err(|e| describe(&e, limit))? {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok((status, body))
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

/// The cause of a failed request, without its URL.
fn describe(e: &reqwest::Error, limit: Limit) -> ProbeError {
    if e.is_timeout() {
        limit.expired()
    } else if let Some(tls) = tls_cause(e) {
        ProbeError::Tls(tls)
    } else if e.is_connect() {
        ProbeError::Unreachable
    } else if e.is_body() || e.is_decode() {
        ProbeError::Protocol("the body could not be read".into())
    } else {
        ProbeError::Protocol("the request failed".into())
    }
}
