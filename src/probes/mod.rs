//! Direct probes of OdorDiff-2's parts: Prometheus (or a `/metrics` scrape), PostgreSQL
//! and PgBouncer, Redis, the HTTP health endpoints and the public TLS certificate.
//!
//! Every probe has its own timeout and turns any failure into a short reason, so one
//! slow or broken source shows as "unknown" and never delays or fails the rest.

pub mod http;
pub mod postgres;
pub mod prometheus;
pub mod redis;
pub mod tls;

use std::future::Future;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use self::http::HttpClient;
use self::postgres::{AppDatabase, PgBouncer, Postgres};
use self::prometheus::Prometheus;
use self::redis::Redis;
use crate::domain::args::format_duration;
use crate::domain::diagnostics::{
    AppConnection, CacheStats, CertInfo, ConnectionCounts, DbSizes, DiskPicture, EndpointErrors,
    HealthAnswer, HealthCheck, Picture, PoolStats, SlowStatement, TopStatements, error_breakdown,
    volumes,
};
pub use crate::domain::probe::{Limit, ProbeError};
use crate::domain::signals::{Links, Reading, Signal, Source, Thresholds};
use crate::domain::status::SelfStatus;

/// The signals `/odor status` shows.
pub const STATUS_SIGNALS: [Signal; 3] =
    [Signal::ErrorRate, Signal::P95Latency, Signal::RequestRate];

/// Runs `work` within `limit`; a timeout becomes a reason like any other failure.
pub async fn bounded<T>(
    limit: Limit,
    work: impl Future<Output = Result<T, ProbeError>>,
) -> Result<T, ProbeError> {
    tokio::time::timeout(limit.after, work)
        .await
        .unwrap_or_else(|_| Err(limit.expired()))
}

/// The setting every probe's own bound comes from.
const TIMEOUT_KEY: &str = "probes.timeout";

/// Settings of the probes, built by the configuration.
/// Where the diagnostics probes look, how long each may take, and the runbook's thresholds.
#[derive(Debug, Clone)]
pub struct ProbesConfig {
    /// Prometheus' HTTP API; unset means the service's `/metrics` is scraped instead.
    pub prometheus_url: Option<Url>,
    /// The service's own `/metrics`, the fallback when Prometheus cannot answer.
    pub metrics_url: Option<Url>,
    /// The `job` label of OdorDiff-2's API series in PromQL.
    pub job: String,
    /// The label of `http_requests_total` naming the endpoint, for the error breakdown.
    pub endpoint_label: String,
    /// The service's namespace (`kubernetes.namespace`), whose volumes and container logs
    /// the kubelet's series are read for.
    pub namespace: String,
    /// The range of PromQL `rate()`s.
    pub rate_window: Duration,
    /// PostgreSQL, for connections, slow queries and maintenance (may hold a password).
    pub postgres_url: Option<SecretString>,
    /// PgBouncer's admin console (`…/pgbouncer`).
    pub pgbouncer_url: Option<SecretString>,
    /// The API's own database URL (through PgBouncer, as the application's role): the
    /// connectivity test connects the way the API does, not the way odorbot does.
    pub app_database_url: Option<SecretString>,
    /// `redis://` or `rediss://` (TLS), with `user:password@` for an ACL user.
    pub redis_url: Option<SecretString>,
    /// PEM roots that vouch for a `rediss://` server instead of the system's.
    pub redis_ca_file: Option<std::path::PathBuf>,
    /// The service's base URL; `/health` and `/ready` are appended.
    pub health_url: Option<Url>,
    /// `host:port` whose TLS certificate is inspected.
    pub tls_host: Option<String>,
    /// Bound on each signal; a slower source shows as unknown.
    pub timeout: Duration,
    /// Bound on a whole picture such as `/odor status`.
    pub deadline: Duration,
    pub thresholds: Thresholds,
    pub links: Links,
}

pub struct Probes {
    http: HttpClient,
    prometheus: Option<Prometheus>,
    metrics_url: Option<Url>,
    job: String,
    endpoint_label: String,
    namespace: String,
    rate_window: Duration,
    postgres: Option<Postgres>,
    pgbouncer: Option<PgBouncer>,
    app_database: Option<AppDatabase>,
    redis: Option<Redis>,
    health_url: Option<Url>,
    tls_host: Option<String>,
    pub timeout: Duration,
    pub deadline: Duration,
    pub thresholds: Thresholds,
    pub links: Links,
}

impl Probes {
    /// Builds the probes; nothing connects until a probe runs.
    ///
    /// # Errors
    /// When TLS roots cannot be loaded or a URL cannot be used.
    pub fn new(config: &ProbesConfig) -> Result<Self, ProbeError> {
        let http = HttpClient::new()?;
        let timeout = config.timeout;
        Ok(Self {
            prometheus: config
                .prometheus_url
                .clone()
                .map(|u| Prometheus::new(u, http.clone())),
            metrics_url: config.metrics_url.clone(),
            job: config.job.clone(),
            endpoint_label: config.endpoint_label.clone(),
            namespace: config.namespace.clone(),
            rate_window: config.rate_window,
            postgres: config
                .postgres_url
                .as_ref()
                .map(|u| Postgres::new(u, timeout))
                .transpose()?,
            pgbouncer: config
                .pgbouncer_url
                .as_ref()
                .map(|u| PgBouncer::new(u, timeout))
                .transpose()?,
            app_database: config
                .app_database_url
                .as_ref()
                .map(|u| AppDatabase::new(u, timeout))
                .transpose()?,
            redis: config
                .redis_url
                .as_ref()
                .map(|u| Redis::new(u, config.redis_ca_file.as_deref(), timeout))
                .transpose()?,
            health_url: config.health_url.clone(),
            tls_host: config.tls_host.clone(),
            http,
            timeout,
            deadline: config.deadline,
            thresholds: config.thresholds,
            links: config.links.clone(),
        })
    }

    /// One signal: from Prometheus when it answers, else from a `/metrics` scrape.
    /// Returns the reading and where it came from.
    pub async fn signal(&self, signal: Signal) -> (Reading, Source) {
        let mut readings = self.signals(&[signal]).await;
        readings.pop().map_or_else(
            || {
                (
                    Err(ProbeError::NoData("no reading".into())),
                    Source::Prometheus,
                )
            },
            |(_, r, s)| (r, s),
        )
    }

    /// Several signals at once; the scrape fallback, when needed, is fetched once.
    pub async fn signals(&self, wanted: &[Signal]) -> Vec<(Signal, Reading, Source)> {
        // Prometheus gets most of the budget; what remains is for the fallback.
        let prom_budget = Limit::new(self.timeout.mul_f64(0.6), "60% of probes.timeout");
        let scrape_budget = Limit::new(
            self.timeout - prom_budget.after,
            "the rest of probes.timeout",
        );
        let mut out: Vec<(Signal, Reading, Source)> = match &self.prometheus {
            Some(prom) => {
                let queries = wanted.iter().map(|s| {
                    let promql = prometheus::query(
                        *s,
                        &self.job,
                        &self.namespace,
                        &format_duration(self.rate_window),
                    );
                    async move {
                        (
                            *s,
                            bounded(prom_budget, prom.instant_owned(promql, prom_budget)).await,
                        )
                    }
                });
                futures_util::future::join_all(queries)
                    .await
                    .into_iter()
                    .map(|(s, r)| (s, r, Source::Prometheus))
                    .collect()
            }
            None => wanted
                .iter()
                .map(|s| {
                    (
                        *s,
                        Err(ProbeError::not_configured(
                            "Prometheus",
                            "probes.prometheus_url",
                        )),
                        Source::Prometheus,
                    )
                })
                .collect(),
        };
        // Fall back only where Prometheus could not reach or answer, not where it
        // answered that there is no data.
        let needs_scrape = |r: &Reading| r.as_ref().is_err_and(|e| !e.is_no_data());
        if out.iter().any(|(_, r, _)| needs_scrape(r))
            && let Some(url) = &self.metrics_url
        {
            let scrape = bounded(scrape_budget, async {
                let answer = self.http.get(url, scrape_budget).await?;
                if answer.status != 200 {
                    return Err(ProbeError::HttpStatus(answer.status));
                }
                Ok(prometheus::parse_text(&answer.body))
            })
            .await;
            for (signal, reading, source) in out.iter_mut().filter(|(_, r, _)| needs_scrape(r)) {
                let Err(prom_error) = std::mem::replace(reading, Ok(f64::NAN)) else {
                    continue;
                };
                let fallback = |scrape: ProbeError| ProbeError::Fallback {
                    primary: Box::new(prom_error.clone()),
                    scrape: Box::new(scrape),
                };
                *reading = match &scrape {
                    Ok(samples) => prometheus::from_scrape(*signal, samples).map_err(fallback),
                    Err(e) => Err(fallback(e.clone())),
                };
                if reading.is_ok() {
                    *source = Source::Scrape;
                }
            }
        }
        out
    }

    /// `/health` and `/ready` of the service.
    pub async fn health(&self) -> Vec<HealthCheck> {
        let Some(base) = &self.health_url else {
            return vec![HealthCheck {
                path: "Health".into(),
                answer: Err(ProbeError::not_configured(
                    "The service URL",
                    "probes.health_url",
                )),
            }];
        };
        let check = |path: &'static str| async move {
            let answer = async {
                let url = base.join(path).map_err(|e| ProbeError::BadConfig {
                    what: "The service URL",
                    key: "probes.health_url",
                    why: e.to_string(),
                })?;
                let answer = self.http.get(&url, self.limit()).await?;
                Ok(HealthAnswer {
                    status: answer.status,
                    latency: answer.latency,
                })
            };
            HealthCheck {
                path: format!("/{path}"),
                answer: answer.await,
            }
        };
        let (health, ready) = tokio::join!(check("health"), check("ready"));
        vec![health, ready]
    }

    /// The bound of one source within a reply: its timeout, or the reply's deadline when
    /// that is shorter.
    pub fn reply_limit(&self) -> Limit {
        if self.timeout <= self.deadline {
            self.limit()
        } else {
            Limit::new(self.deadline, "probes.deadline")
        }
    }

    /// The bound of one probe.
    fn limit(&self) -> Limit {
        Limit::new(self.timeout, TIMEOUT_KEY)
    }

    fn prometheus(&self) -> Result<&Prometheus, ProbeError> {
        self.prometheus.as_ref().ok_or(ProbeError::not_configured(
            "Prometheus",
            "probes.prometheus_url",
        ))
    }

    /// Each volume of the namespace by claim, and container log bytes by pod, from the
    /// kubelet's series in Prometheus (the typed form of `kubectl exec … df` and `du`).
    pub async fn disk(&self) -> DiskPicture {
        let limit = self.limit();
        let ns = &self.namespace;
        let by = |metric: &str, label: &'static str, agg: &str| {
            let promql = format!("{agg} by ({label}) ({metric}{{namespace=\"{ns}\"}})");
            async move {
                bounded(limit, async {
                    self.prometheus()?.by_label(&promql, label, limit).await
                })
                .await
            }
        };
        let claim = "persistentvolumeclaim";
        let (used, capacity, logs) = tokio::join!(
            by("kubelet_volume_stats_used_bytes", claim, "max"),
            by("kubelet_volume_stats_capacity_bytes", claim, "max"),
            by("kubelet_container_log_filesystem_used_bytes", "pod", "sum"),
        );
        DiskPicture {
            volumes: used.and_then(|u| Ok(volumes(&u, &capacity?))),
            logs,
        }
    }

    /// 5xx answers by endpoint over the rate window, the worst `top` (Prometheus only: a
    /// scrape has no rates, only totals since the service started).
    pub async fn error_breakdown(&self, top: usize) -> Result<Vec<EndpointErrors>, ProbeError> {
        let prom = self.prometheus()?;
        let limit = self.limit();
        let window = format_duration(self.rate_window);
        let (errors, requests) =
            prometheus::breakdown_queries(&self.job, &self.endpoint_label, &window);
        let (errors, requests) = bounded(limit, async {
            Ok(tokio::join!(
                prom.by_label(&errors, &self.endpoint_label, limit),
                prom.by_label(&requests, &self.endpoint_label, limit)
            ))
        })
        .await?;
        Ok(error_breakdown(&errors?, &requests?, top))
    }

    /// The label the error breakdown is by, and its window.
    pub fn breakdown_by(&self) -> (&str, Duration) {
        (&self.endpoint_label, self.rate_window)
    }

    fn postgres(&self) -> Result<&Postgres, ProbeError> {
        self.postgres.as_ref().ok_or(ProbeError::not_configured(
            "PostgreSQL",
            "ODORBOT_POSTGRES_URL",
        ))
    }

    pub async fn db_connections(&self) -> Result<ConnectionCounts, ProbeError> {
        bounded(self.limit(), async { self.postgres()?.connections().await }).await
    }

    pub async fn db_size(&self) -> Result<i64, ProbeError> {
        bounded(self.limit(), async {
            self.postgres()?.database_size().await
        })
        .await
    }

    /// PostgreSQL's storage: the database, its largest `limit` relations, WAL and logs.
    pub async fn db_sizes(&self, limit: usize) -> DbSizes {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let bound = self.limit();
        let (database, relations, wal, logs) = tokio::join!(
            self.db_size(),
            bounded(bound, async {
                self.postgres()?.largest_relations(limit).await
            }),
            bounded(bound, async { self.postgres()?.dir_size(true).await }),
            bounded(bound, async { self.postgres()?.dir_size(false).await }),
        );
        DbSizes {
            database,
            relations,
            wal,
            logs,
        }
    }

    pub async fn db_long_running(
        &self,
        older_than: Duration,
    ) -> Result<Vec<SlowStatement>, ProbeError> {
        bounded(self.limit(), async {
            self.postgres()?.long_running(older_than).await
        })
        .await
    }

    pub async fn db_top_statements(&self, limit: i64) -> Result<TopStatements, ProbeError> {
        bounded(self.limit(), async {
            self.postgres()?.top_statements(limit).await
        })
        .await
    }

    /// Destructive: only ever called for an approved request, with the sessions its
    /// approver saw.
    pub async fn db_terminate_sessions(
        &self,
        sessions: &[(i32, i64)],
        older_than: Duration,
    ) -> Result<Vec<SlowStatement>, ProbeError> {
        bounded(self.limit(), async {
            self.postgres()?
                .terminate_sessions(sessions, older_than)
                .await
        })
        .await
    }

    /// Destructive: only ever called for an approved request. Vacuum takes its time, so it
    /// is bounded by minutes rather than the probe timeout.
    pub async fn db_vacuum(&self, limit: Duration) -> Result<(), ProbeError> {
        bounded(Limit::new(limit, "the vacuum limit"), async {
            self.postgres()?.vacuum_analyze().await
        })
        .await
    }

    /// A fresh connection made as the API makes it, and a query on it; `where` it went
    /// (host and port, never the credentials).
    pub async fn app_connectivity(&self) -> (Option<String>, Result<AppConnection, ProbeError>) {
        let Some(app) = &self.app_database else {
            return (
                None,
                Err(ProbeError::not_configured(
                    "The API's database connection",
                    "probes.app_database_url_file or ODORBOT_APP_DATABASE_URL",
                )),
            );
        };
        (Some(app.via()), bounded(self.limit(), app.check()).await)
    }

    pub async fn pgbouncer_pools(&self) -> Result<Vec<PoolStats>, ProbeError> {
        let Some(pgb) = &self.pgbouncer else {
            return Err(ProbeError::not_configured(
                "PgBouncer",
                "ODORBOT_PGBOUNCER_URL",
            ));
        };
        bounded(self.limit(), pgb.pools()).await
    }

    fn redis(&self) -> Result<&Redis, ProbeError> {
        self.redis
            .as_ref()
            .ok_or(ProbeError::not_configured("Redis", "ODORBOT_REDIS_URL"))
    }

    pub async fn cache_stats(&self) -> Result<CacheStats, ProbeError> {
        bounded(self.limit(), async { self.redis()?.stats().await }).await
    }

    pub async fn cache_keys(&self, pattern: &str, limit: usize) -> Result<Vec<String>, ProbeError> {
        bounded(self.limit(), async {
            self.redis()?.sample_keys(pattern, limit).await
        })
        .await
    }

    /// The public endpoint's certificate; returns the host it looked at.
    pub async fn tls(&self) -> (String, Result<CertInfo, ProbeError>) {
        match &self.tls_host {
            None => (
                String::new(),
                Err(ProbeError::not_configured(
                    "The TLS host",
                    "probes.tls_host",
                )),
            ),
            Some(host) => (host.clone(), tls::inspect(host, self.limit()).await),
        }
    }

    /// Everything `/odor status` shows, gathered concurrently, each part bounded: odorbot's
    /// own state and the deployments' readiness (from the caller) run beside the probes, so
    /// the reply takes the slowest part, never the sum.
    pub async fn picture(
        &self,
        odorbot: impl Future<Output = SelfStatus>,
        deployments: impl Future<Output = Vec<crate::domain::diagnostics::Readiness>>,
    ) -> Picture {
        let deadline = Limit::new(self.deadline, "probes.deadline");
        let limit = self.reply_limit();
        let (odorbot, deployments, signals, health, db, cache) = tokio::join!(
            odorbot,
            deployments,
            bounded(deadline, async { Ok(self.signals(&STATUS_SIGNALS).await) }),
            bounded(limit, async { Ok(self.health().await) }),
            self.db_connections(),
            self.cache_stats(),
        );
        let signals = signals.unwrap_or_else(|why| {
            STATUS_SIGNALS
                .iter()
                .map(|s| (*s, Err(why.clone()), Source::Prometheus))
                .collect()
        });
        Picture {
            deployments,
            signals,
            health: health.unwrap_or_else(|why| {
                ["/health", "/ready"]
                    .map(|path| HealthCheck {
                        path: path.into(),
                        answer: Err(why.clone()),
                    })
                    .into()
            }),
            db,
            cache,
            odorbot,
        }
    }
}

impl Prometheus {
    /// An owned-argument form of [`Prometheus::instant`] for use inside `join_all`.
    async fn instant_owned(&self, promql: String, timeout: Limit) -> Reading {
        self.instant(&promql, timeout).await
    }
}
