//! Redis through the `redis` crate: plain or TLS (`rediss://`, rustls), a password or an
//! ACL user from the URL, and only the commands the runbook needs (`INFO`, `SCAN`; never
//! `KEYS`), each reply and the number of calls bounded.

use std::path::Path;
use std::time::Duration;

use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, TlsCertificates};
use secrecy::{ExposeSecret, SecretString};

use super::{Limit, ProbeError, TIMEOUT_KEY};
use crate::domain::diagnostics::CacheStats;
use crate::netcause::tls as tls_cause;

/// Longest `INFO` section accepted (one is a few KiB).
const MAX_INFO: usize = 1024 * 1024;
/// `SCAN` calls made for one sample, whatever the keyspace size.
const MAX_SCAN_CALLS: usize = 20;
/// Longest key kept in a sample; longer keys are cut.
const MAX_KEY: usize = 1024;

/// Where and how to reach Redis, from a `redis://` or `rediss://` URL.
#[derive(Clone)]
pub struct Redis {
    client: Client,
    limit: Limit,
}

impl Redis {
    /// `ca_file` holds PEM roots for a `rediss://` server signed by a private CA.
    ///
    /// # Errors
    /// When the URL is not a usable Redis URL or the CA file cannot be read.
    pub fn new(
        url: &SecretString,
        ca_file: Option<&Path>,
        timeout: Duration,
    ) -> Result<Self, ProbeError> {
        let bad = |key: &'static str, why: String| ProbeError::BadConfig {
            what: "Redis",
            key,
            why,
        };
        // The crate's own error would quote the URL, password included: never shown.
        let url = url.expose_secret();
        let client = match ca_file {
            None => Client::open(url),
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    bad(
                        "probes.redis_ca_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                Client::build_with_tls(
                    url,
                    TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem),
                    },
                )
            }
        }
        .map_err(|e| {
            bad(
                "ODORBOT_REDIS_URL",
                format!("not a usable Redis URL ({:?})", e.kind()),
            )
        })?;
        Ok(Self {
            client,
            limit: Limit::new(timeout, TIMEOUT_KEY),
        })
    }

    async fn connect(&self) -> Result<redis::aio::MultiplexedConnection, ProbeError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.limit.after))
            .set_response_timeout(Some(self.limit.after));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| self.reason(&e))
    }

    /// The cause, short; never the URL.
    fn reason(&self, e: &RedisError) -> ProbeError {
        if e.kind() == ErrorKind::AuthenticationFailed {
            ProbeError::Auth
        } else if let Some(tls) = tls_cause(e) {
            ProbeError::Tls(tls)
        } else if e.is_timeout() {
            self.limit.expired()
        } else if e.is_connection_refusal() || e.is_io_error() {
            ProbeError::Unreachable
        } else if let Some(code) = e.code() {
            let detail = e.detail().unwrap_or_default();
            ProbeError::Server {
                server: "Redis",
                message: format!("{code} {detail}").chars().take(160).collect(),
            }
        } else {
            ProbeError::Protocol(format!("{:?}", e.kind()))
        }
    }

    async fn info(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        section: &str,
    ) -> Result<String, ProbeError> {
        let text: Vec<u8> = redis::cmd("INFO")
            .arg(section)
            .query_async(conn)
            .await
            .map_err(|e| self.reason(&e))?;
        if text.len() > MAX_INFO {
            return Err(ProbeError::Protocol("an INFO reply over 1 MiB".into()));
        }
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    /// Hits, misses, evictions and memory from `INFO`.
    ///
    /// # Errors
    /// The cause.
    pub async fn stats(&self) -> Result<CacheStats, ProbeError> {
        let work = async {
            let mut conn = self.connect().await?;
            let stats = self.info(&mut conn, "stats").await?;
            let memory = self.info(&mut conn, "memory").await?;
            Ok::<_, ProbeError>((stats, memory))
        };
        let (stats, memory) = tokio::time::timeout(self.limit.after, work)
            .await
            .map_err(|_| self.limit.expired())??;
        let field = |text: &str, key: &str| -> Option<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse().ok())
        };
        let missing = |key: &str| ProbeError::Protocol(format!("INFO stats has no {key}"));
        Ok(CacheStats {
            hits: field(&stats, "keyspace_hits").ok_or_else(|| missing("keyspace_hits"))?,
            misses: field(&stats, "keyspace_misses").ok_or_else(|| missing("keyspace_misses"))?,
            evicted: field(&stats, "evicted_keys").unwrap_or(0),
            expired: field(&stats, "expired_keys").unwrap_or(0),
            used_memory: field(&memory, "used_memory").unwrap_or(0),
            max_memory: field(&memory, "maxmemory").unwrap_or(0),
        })
    }

    /// Up to `limit` keys matching `pattern`, by `SCAN` with a bounded number of calls.
    ///
    /// # Errors
    /// The cause.
    pub async fn sample_keys(
        &self,
        pattern: &str,
        limit: usize,
    ) -> Result<Vec<String>, ProbeError> {
        let work = async {
            let mut conn = self.connect().await?;
            let mut keys = Vec::new();
            let mut cursor: u64 = 0;
            for _ in 0..MAX_SCAN_CALLS {
                let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(100)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| self.reason(&e))?;
                keys.extend(
                    batch
                        .into_iter()
                        .take(limit.saturating_sub(keys.len()))
                        .map(|k| String::from_utf8_lossy(&k[..k.len().min(MAX_KEY)]).into_owned()),
                );
                cursor = next;
                if keys.len() >= limit || cursor == 0 {
                    break;
                }
            }
            Ok(keys)
        };
        tokio::time::timeout(self.limit.after, work)
            .await
            .map_err(|_| self.limit.expired())?
    }
}
