//! Diagnostics results as plain data, and their replies with the runbook's verdicts.
//! Every part may be unknown with a reason; a missing part never hides the others.

use std::fmt;
use std::time::Duration;

use super::args::format_duration;
use super::probe::ProbeError;
use super::signals::{
    Links, Reading, Signal, Source, Thresholds, Verdict, judge, judge_cache_hit_rate, signal_row,
};
use super::status::SelfStatus;
use super::view::{Block, Message, code_span, escape, truncate};

/// Share of `max_connections` in use from which the pool counts as nearly exhausted.
pub const DB_CONNECTIONS_MAX_SHARE: f64 = 0.9;
/// A certificate closer than this to expiry needs renewing now.
pub const CERT_RENEW_WITHIN: Duration = Duration::from_secs(14 * 86_400);

#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionCounts {
    /// `(state, count)`, most first.
    pub by_state: Vec<(String, i64)>,
    pub max: i64,
}

impl ConnectionCounts {
    pub fn total(&self) -> i64 {
        self.by_state.iter().map(|(_, n)| n).sum()
    }

    pub fn verdict(&self) -> Verdict {
        let share = self.total() as f64 / self.max.max(1) as f64;
        let detail = format!("{} of {} max_connections", self.total(), self.max);
        if share >= DB_CONNECTIONS_MAX_SHARE {
            Verdict::Breach(format!("{detail}: nearly exhausted"))
        } else {
            Verdict::Ok(detail)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SlowStatement {
    pub pid: i32,
    /// When the backend started, in microseconds since the Unix epoch: with the pid, it
    /// names this one session.
    pub started_micros: i64,
    pub user: String,
    pub state: String,
    pub running_secs: f64,
    pub query: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TopStatements {
    /// `(query, calls, mean ms, total ms)`, slowest mean first.
    Rows(Vec<(String, i64, f64, f64)>),
    /// Why `pg_stat_statements` cannot be read.
    Missing(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PoolStats {
    pub database: String,
    pub user: String,
    pub clients_active: i64,
    pub clients_waiting: i64,
    pub servers_active: i64,
    pub servers_idle: i64,
    pub max_wait_secs: f64,
    pub pool_mode: String,
    pub avg_query_us: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub evicted: u64,
    pub expired: u64,
    pub used_memory: u64,
    /// 0 when no limit is set.
    pub max_memory: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub issuer: String,
    pub names: Vec<String>,
    pub not_after_unix: i64,
    /// Negative once expired.
    pub seconds_left: i64,
}

impl CertInfo {
    pub fn verdict(&self) -> Verdict {
        let days = self.seconds_left.div_euclid(86_400);
        if self.seconds_left <= 0 {
            Verdict::Breach(format!("expired {} days ago", -days))
        } else if self.seconds_left < CERT_RENEW_WITHIN.as_secs() as i64 {
            Verdict::Breach(format!("{days} days left: renew now (/odor cert renew)"))
        } else {
            Verdict::Ok(format!("{days} days left"))
        }
    }
}

/// One `/health` or `/ready` check: the path asked, and its answer or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub path: String,
    pub answer: Result<HealthAnswer, ProbeError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthAnswer {
    pub status: u16,
    pub latency: Duration,
}

impl HealthCheck {
    pub fn verdict(&self) -> Verdict {
        match &self.answer {
            Ok(a) => {
                let detail = format!("HTTP {} in {} ms", a.status, a.latency.as_millis());
                if (200..300).contains(&a.status) {
                    Verdict::Ok(detail)
                } else {
                    Verdict::Breach(detail)
                }
            }
            Err(why) => Verdict::Unknown(why.to_string()),
        }
    }

    /// Its row, named by its path, so two failing checks say which is which.
    pub fn line(&self) -> String {
        verdict_line(&self.path, "", &self.verdict())
    }

    /// Answered outside 2xx, or could not be asked; an unconfigured check says nothing.
    pub fn failing(&self) -> bool {
        match &self.answer {
            Ok(a) => !(200..300).contains(&a.status),
            Err(e) => !e.is_not_configured(),
        }
    }
}

/// A verdict as one line: mark, what, and the detail or the reason it is unknown.
pub fn verdict_line(what: &str, value: &str, verdict: &Verdict) -> String {
    let detail = match verdict {
        Verdict::Ok(d) | Verdict::Breach(d) => format!(" ({})", escape(d)),
        Verdict::Unknown(why) => format!("unknown: {}", escape(why)),
        Verdict::Info => String::new(),
    };
    format!("{} *{what}*: {value}{detail}", verdict.mark())
}

fn unknown_line(what: &str, why: &impl fmt::Display) -> String {
    verdict_line(what, "", &Verdict::Unknown(why.to_string()))
}

fn with_links(mut blocks: Vec<Block>, links: &Links) -> Vec<Block> {
    if let Some(line) = links.render() {
        blocks.push(Block::Context(line));
    }
    blocks
}

fn message(title: &str, lines: Vec<String>, links: &Links) -> Message {
    let mut text = lines.join("\n");
    if text.is_empty() {
        text = "Nothing to show.".into();
    }
    Message {
        text: title.to_owned(),
        blocks: with_links(
            vec![Block::Header(title.to_owned()), Block::Section(text)],
            links,
        ),
    }
}

/// `/odor metrics <signal>`.
pub fn render_signal(
    signal: Signal,
    reading: &Reading,
    source: Source,
    t: &Thresholds,
    links: &Links,
) -> Message {
    let (verdict, value) = signal_row(signal, reading, source, t);
    let mut lines = vec![verdict_line(signal.title(), &value, &verdict)];
    if reading.is_ok() {
        lines.push(format!("_Source: {}_", source.describe()));
    }
    message(&format!("{} — OdorDiff-2", signal.title()), lines, links)
}

/// `/odor db connections`.
pub fn render_connections(
    result: &Result<ConnectionCounts, ProbeError>,
    size: &Result<i64, ProbeError>,
    links: &Links,
) -> Message {
    let mut lines = match result {
        Ok(c) => {
            let mut lines = vec![verdict_line(
                "Connections",
                &c.total().to_string(),
                &c.verdict(),
            )];
            lines.extend(
                c.by_state
                    .iter()
                    .map(|(state, n)| format!("• {}: {n}", escape(state))),
            );
            lines
        }
        Err(why) => vec![unknown_line("Connections", why)],
    };
    lines.push(match size {
        Ok(bytes) => format!("Database size: {}", human_bytes(*bytes as u64)),
        Err(why) => format!("Database size unknown: {}", escape(&why.to_string())),
    });
    message("PostgreSQL connections", lines, links)
}

/// Files counted and their bytes, from `pg_ls_waldir()` or `pg_ls_logdir()`.
pub type DirSize = (i64, i64);

/// PostgreSQL's storage from its own functions: the typed form of `find …/data -size +100M`
/// and `du -sh` of the log directory.
#[derive(Debug, Clone)]
pub struct DbSizes {
    pub database: Result<i64, ProbeError>,
    /// `schema.name` and total bytes (table, indexes and TOAST), the largest first.
    pub relations: Result<Vec<(String, i64)>, ProbeError>,
    pub wal: Result<DirSize, ProbeError>,
    pub logs: Result<DirSize, ProbeError>,
}

/// Relations shown by default.
pub const DB_SIZES_TOP: usize = 10;

/// `/odor db sizes`.
pub fn render_db_sizes(s: &DbSizes, links: &Links) -> Message {
    let mut lines = vec![match &s.database {
        Ok(bytes) => format!("Database size: {}", human_bytes(*bytes as u64)),
        Err(why) => unknown_line("Database size", why),
    }];
    lines.push("*Largest relations* (table, indexes and TOAST)".into());
    match &s.relations {
        Ok(rows) if rows.is_empty() => lines.push("no user relations".into()),
        Ok(rows) => {
            lines.extend(rows.iter().map(|(name, bytes)| {
                format!("• {}: {}", code_span(name), human_bytes(*bytes as u64))
            }))
        }
        Err(why) => lines.push(unknown_line("Relations", why)),
    }
    let dir = |what: &str, source: &str, r: &Result<DirSize, ProbeError>| match r {
        Ok((files, bytes)) => format!(
            "*{what}*: {files} files, {} (`{source}`)",
            human_bytes(*bytes as u64)
        ),
        Err(why) => unknown_line(what, why),
    };
    lines.push(dir("WAL", "pg_ls_waldir()", &s.wal));
    lines.push(dir("Server logs", "pg_ls_logdir()", &s.logs));
    message("PostgreSQL storage", lines, links)
}

/// A connection made the way the API makes it, and what it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConnection {
    /// `current_user` and `current_database()` as the server saw them.
    pub user: String,
    pub database: String,
    /// Connecting and the first query.
    pub took: Duration,
}

/// The `db_connectivity` step: whether the database accepts the API's own connection
/// (`via`: where it goes, e.g. `127.0.0.1:6432`), not odorbot's.
pub fn render_connectivity(
    result: &Result<AppConnection, ProbeError>,
    via: Option<&str>,
    links: &Links,
) -> Message {
    let what = "Connection as the API makes it";
    let line = match result {
        Ok(c) => verdict_line(
            what,
            &format!(
                "{} to {} through {} in {} ms",
                code_span(&c.user),
                code_span(&c.database),
                code_span(via.unwrap_or("?")),
                c.took.as_millis()
            ),
            &Verdict::Ok("connected and answered".into()),
        ),
        Err(why @ ProbeError::NotConfigured { .. }) => unknown_line(what, why),
        Err(why) => verdict_line(
            what,
            &via.map(code_span).unwrap_or_default(),
            &Verdict::Breach(why.to_string()),
        ),
    };
    message("Database connectivity", vec![line], links)
}

/// `/odor db slow-queries`.
pub fn render_slow_queries(
    running: &Result<Vec<SlowStatement>, ProbeError>,
    older_than: Duration,
    top: &Result<TopStatements, ProbeError>,
    links: &Links,
) -> Message {
    let mut lines = vec![format!(
        "*Running longer than {}*",
        format_duration(older_than)
    )];
    match running {
        Ok(rows) if rows.is_empty() => lines.push("✅ none".into()),
        Ok(rows) => lines.extend(rows.iter().map(|s| {
            format!(
                "🔴 pid {} ({}, {}) for {}: {}",
                s.pid,
                escape(&s.user),
                escape(&s.state),
                format_duration(Duration::from_secs_f64(s.running_secs.max(0.0))),
                code_span(&s.query)
            )
        })),
        Err(why) => lines.push(unknown_line("Long-running statements", why)),
    }
    lines.push("*Slowest statements by mean time* (pg_stat_statements)".into());
    match top {
        Ok(TopStatements::Rows(rows)) if rows.is_empty() => {
            lines.push("no statements recorded yet".into())
        }
        Ok(TopStatements::Rows(rows)) => lines.extend(rows.iter().map(|(q, calls, mean, _)| {
            format!("• {mean:.1} ms mean × {calls} calls: {}", code_span(q))
        })),
        Ok(TopStatements::Missing(why)) => lines.push(format!("ℹ️ {}", escape(why))),
        Err(why) => lines.push(unknown_line("Top statements", why)),
    }
    message("PostgreSQL slow queries", lines, links)
}

/// One endpoint's requests over the rate window.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointErrors {
    pub endpoint: String,
    /// 5xx answers a second.
    pub errors: f64,
    /// All answers a second.
    pub requests: f64,
}

impl EndpointErrors {
    /// The share of answers that were 5xx; `None` with no requests.
    pub fn ratio(&self) -> Option<f64> {
        (self.requests > 0.0).then(|| self.errors / self.requests)
    }
}

/// The endpoints shown by default.
pub const ERROR_BREAKDOWN_TOP: usize = 5;

/// Per-endpoint 5xx and request rates joined by endpoint: those with errors, the most
/// errors a second first (then the higher ratio, then by name, so the order is stable),
/// at most `top`. An endpoint with 5xx but no request series still shows, ratio unknown.
pub fn error_breakdown(
    errors: &[(String, f64)],
    requests: &[(String, f64)],
    top: usize,
) -> Vec<EndpointErrors> {
    let mut rows: Vec<EndpointErrors> = errors
        .iter()
        .filter(|(_, rate)| *rate > 0.0)
        .map(|(endpoint, rate)| EndpointErrors {
            endpoint: endpoint.clone(),
            errors: *rate,
            requests: requests
                .iter()
                .find(|(e, _)| e == endpoint)
                .map_or(0.0, |(_, r)| *r),
        })
        .collect();
    rows.sort_by(|a, b| {
        b.errors
            .total_cmp(&a.errors)
            .then_with(|| {
                b.ratio()
                    .unwrap_or(0.0)
                    .total_cmp(&a.ratio().unwrap_or(0.0))
            })
            .then_with(|| a.endpoint.cmp(&b.endpoint))
    });
    rows.truncate(top);
    rows
}

/// `/odor errors`: the worst endpoints, each judged against the error-rate threshold.
pub fn render_error_breakdown(
    result: &Result<Vec<EndpointErrors>, ProbeError>,
    label: &str,
    window: Duration,
    t: &Thresholds,
    links: &Links,
) -> Message {
    let mut lines = vec![format!(
        "_5xx by `{}` over {}, most errors first_",
        escape(label),
        format_duration(window)
    )];
    match result {
        Err(why) => lines.push(unknown_line("Errors by endpoint", why)),
        Ok(rows) if rows.is_empty() => lines.push(verdict_line(
            "Errors by endpoint",
            "no 5xx answers",
            &Verdict::Ok("none".into()),
        )),
        Ok(rows) => lines.extend(rows.iter().map(|row| {
            let (value, verdict) = match row.ratio() {
                Some(ratio) => (
                    format!(
                        "{:.2}% of {:.2} req/s ({:.2} 5xx/s)",
                        ratio * 100.0,
                        row.requests,
                        row.errors
                    ),
                    judge(Signal::ErrorRate, &Ok(ratio), t),
                ),
                None => (
                    format!("{:.2} 5xx/s", row.errors),
                    Verdict::Unknown("no request series for it".into()),
                ),
            };
            verdict_line(&code_span(&row.endpoint), &value, &verdict)
        })),
    }
    message("Errors by endpoint — OdorDiff-2", lines, links)
}

/// `/odor db pools`: PgBouncer's pools with a verdict.
pub fn render_pools(result: &Result<Vec<PoolStats>, ProbeError>, links: &Links) -> Message {
    let lines = match result {
        Err(why) => vec![unknown_line("PgBouncer pools", why)],
        Ok(pools) if pools.is_empty() => vec!["PgBouncer reports no pools yet.".into()],
        Ok(pools) => pools
            .iter()
            .map(|p| {
                let verdict = if p.clients_waiting > 0 {
                    Verdict::Breach(format!(
                        "{} clients waiting, longest {:.1}s",
                        p.clients_waiting, p.max_wait_secs
                    ))
                } else {
                    Verdict::Ok("no clients waiting".into())
                };
                let value = format!(
                    "{} active clients, {} active / {} idle servers, avg query {} ms ({})",
                    p.clients_active,
                    p.servers_active,
                    p.servers_idle,
                    p.avg_query_us / 1000,
                    escape(&p.pool_mode)
                );
                verdict_line(
                    &format!("{}/{}", escape(&p.database), escape(&p.user)),
                    &value,
                    &verdict,
                )
            })
            .collect(),
    };
    message("PgBouncer pools", lines, links)
}

/// `/odor cache stats`.
pub fn render_cache(
    result: &Result<CacheStats, ProbeError>,
    keys: Option<&Result<Vec<String>, ProbeError>>,
    t: &Thresholds,
    links: &Links,
) -> Message {
    let mut lines = match result {
        Err(why) => vec![unknown_line("Cache hit rate", why)],
        Ok(s) => {
            let lookups = s.hits + s.misses;
            let rate = if lookups > 0 {
                format!(
                    "{:.2}% ({} hits, {} misses)",
                    s.hits as f64 / lookups as f64 * 100.0,
                    s.hits,
                    s.misses
                )
            } else {
                "no lookups yet".into()
            };
            let memory = if s.max_memory > 0 {
                format!(
                    "{} of {}",
                    human_bytes(s.used_memory),
                    human_bytes(s.max_memory)
                )
            } else {
                format!("{} (no limit)", human_bytes(s.used_memory))
            };
            vec![
                verdict_line(
                    "Cache hit rate",
                    &rate,
                    &judge_cache_hit_rate(s.hits, s.misses, t),
                ),
                format!(
                    "Evicted keys: {} · expired keys: {} · memory: {memory}",
                    s.evicted, s.expired
                ),
            ]
        }
    };
    match keys {
        Some(Ok(keys)) => {
            lines.push(format!("*Key sample* ({} keys, by SCAN)", keys.len()));
            lines.extend(keys.iter().take(20).map(|k| format!("• {}", code_span(k))));
        }
        Some(Err(why)) => lines.push(unknown_line("Key sample", why)),
        None => {}
    }
    message("Redis cache", lines, links)
}

/// `/odor disk`.
/// One PersistentVolumeClaim's volume as the kubelet reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeUse {
    pub pvc: String,
    pub used_bytes: f64,
    /// `None` when the kubelet reported no capacity for it.
    pub capacity_bytes: Option<f64>,
}

impl VolumeUse {
    pub fn used_ratio(&self) -> Option<f64> {
        self.capacity_bytes
            .filter(|c| *c > 0.0)
            .map(|c| self.used_bytes / c)
    }
}

/// Used and capacity bytes by claim joined into volumes, the fullest first (a volume of
/// unknown capacity last), then by name.
pub fn volumes(used: &[(String, f64)], capacity: &[(String, f64)]) -> Vec<VolumeUse> {
    let mut rows: Vec<VolumeUse> = used
        .iter()
        .map(|(pvc, bytes)| VolumeUse {
            pvc: pvc.clone(),
            used_bytes: *bytes,
            capacity_bytes: capacity.iter().find(|(c, _)| c == pvc).map(|(_, b)| *b),
        })
        .collect();
    rows.sort_by(|a, b| {
        b.used_ratio()
            .unwrap_or(-1.0)
            .total_cmp(&a.used_ratio().unwrap_or(-1.0))
            .then_with(|| a.pvc.cmp(&b.pvc))
    });
    rows
}

/// Container logs shown by `/odor disk`, the largest first.
pub const LOG_PODS_SHOWN: usize = 5;

/// What `/odor disk` and the `disk_usage` step read.
#[derive(Debug, Clone)]
pub struct DiskPicture {
    pub volumes: Result<Vec<VolumeUse>, ProbeError>,
    /// Bytes of container logs by pod.
    pub logs: Result<Vec<(String, f64)>, ProbeError>,
}

/// `/odor disk [<pvc>]`: each volume (or the one asked for) judged against the free-space
/// threshold, by claim name, and the pods with the largest container logs.
pub fn render_disk(d: &DiskPicture, pvc: Option<&str>, t: &Thresholds, links: &Links) -> Message {
    let mut lines = Vec::new();
    match &d.volumes {
        Err(why) => lines.push(unknown_line("Volumes", why)),
        Ok(all) => {
            let shown: Vec<&VolumeUse> = all
                .iter()
                .filter(|v| pvc.is_none_or(|p| v.pvc == p))
                .collect();
            if shown.is_empty() {
                let what = pvc.map_or("Volumes".to_owned(), code_span);
                lines.push(unknown_line(&what, &"no kubelet volume stats for it"));
            }
            lines.extend(shown.iter().map(|v| {
                let reading = v
                    .used_ratio()
                    .ok_or_else(|| ProbeError::NoData("no capacity reported".into()));
                let value = match v.capacity_bytes {
                    Some(cap) => format!(
                        "{} used ({} of {})",
                        Signal::VolumeUsage.format(reading.clone().unwrap_or(0.0)),
                        human_bytes(v.used_bytes as u64),
                        human_bytes(cap as u64)
                    ),
                    None => format!("{} used", human_bytes(v.used_bytes as u64)),
                };
                verdict_line(
                    &code_span(&v.pvc),
                    &value,
                    &judge(Signal::VolumeUsage, &reading, t),
                )
            }));
        }
    }
    lines.push("*Container logs*, largest first".into());
    match &d.logs {
        Ok(pods) if pods.is_empty() => lines.push("no container log series".into()),
        Ok(pods) => {
            let mut pods = pods.clone();
            pods.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            lines.extend(pods.iter().take(LOG_PODS_SHOWN).map(|(pod, bytes)| {
                format!("• {}: {}", code_span(pod), human_bytes(*bytes as u64))
            }));
        }
        Err(why) => lines.push(unknown_line("Container logs", why)),
    }
    message("Disk space", lines, links)
}

/// The TLS side of `/odor certs`.
pub fn render_tls(host: &str, result: &Result<CertInfo, ProbeError>, links: &Links) -> Message {
    let lines = match result {
        Err(why) => vec![unknown_line(
            &format!("TLS certificate of {}", escape(host)),
            why,
        )],
        Ok(c) => vec![
            verdict_line(
                &format!("TLS certificate of {}", escape(host)),
                "",
                &c.verdict(),
            ),
            format!("Names: {}", escape(&c.names.join(", "))),
            format!("Issuer: {}", escape(&truncate(&c.issuer, 200))),
        ],
    };
    message("Certificates", lines, links)
}

/// A deployment's ready and desired pods, or why they are unknown.
pub type Readiness = (String, Result<(i32, i32), String>);

/// The service's overall picture for `/odor status`.
#[derive(Debug, Clone)]
pub struct Picture {
    /// `(deployment, (ready, desired) or why unknown)` for OdorDiff-2's deployments.
    pub deployments: Vec<Readiness>,
    /// `(signal, reading, source)` for the signals the status shows.
    pub signals: Vec<(Signal, Reading, Source)>,
    pub health: Vec<HealthCheck>,
    pub db: Result<ConnectionCounts, ProbeError>,
    pub cache: Result<CacheStats, ProbeError>,
    pub odorbot: SelfStatus,
}

impl Picture {
    pub fn render(&self, t: &Thresholds, links: &Links) -> Message {
        let mut rows = Rows::default();
        for (name, readiness) in &self.deployments {
            match readiness {
                Ok((ready, desired)) => {
                    let v = if ready >= desired && *desired > 0 {
                        Verdict::Ok("all ready".into())
                    } else if *desired == 0 {
                        Verdict::Breach("scaled to zero".into())
                    } else {
                        Verdict::Breach(format!("{} not ready", desired - ready))
                    };
                    rows.push(name, &format!("{ready}/{desired} pods ready"), v);
                }
                Err(why) => rows.push(name, "", Verdict::Unknown(why.clone())),
            }
        }
        for (signal, reading, source) in &self.signals {
            let (verdict, value) = signal_row(*signal, reading, *source, t);
            rows.push(signal.title(), &value, verdict);
        }
        for check in &self.health {
            rows.push(&check.path, "", check.verdict());
        }
        match &self.db {
            Ok(c) => rows.push("Database connections", &c.total().to_string(), c.verdict()),
            Err(why) => rows.push(
                "Database connections",
                "",
                Verdict::Unknown(why.to_string()),
            ),
        }
        match &self.cache {
            Ok(s) => {
                let lookups = (s.hits + s.misses).max(1);
                rows.push(
                    "Cache hit rate",
                    &format!("{:.2}%", s.hits as f64 / lookups as f64 * 100.0),
                    judge_cache_hit_rate(s.hits, s.misses, t),
                );
            }
            Err(why) => rows.push("Cache hit rate", "", Verdict::Unknown(why.to_string())),
        }
        let headline = rows.headline();
        let mut blocks = vec![
            Block::Header(headline.clone()),
            Block::Section(rows.lines.join("\n")),
        ];
        if !rows.unknown.is_empty() {
            blocks.push(Block::Context(format!(
                "Could not read: {}",
                escape(&rows.unknown.join(", "))
            )));
        }
        // Only the sources that gave a reading are named.
        let mut sources: Vec<&str> = self
            .signals
            .iter()
            .filter(|(_, r, _)| r.is_ok())
            .map(|(_, _, s)| s.describe())
            .collect();
        sources.dedup();
        if !sources.is_empty() {
            blocks.push(Block::Context(format!(
                "Signals from {}",
                sources.join(" and ")
            )));
        }
        blocks.push(Block::Divider);
        blocks.extend(self.odorbot.render().blocks);
        Message {
            text: headline,
            blocks: with_links(blocks, links),
        }
    }
}

/// The status rows, with what was breached and what could not be read.
#[derive(Default)]
struct Rows {
    lines: Vec<String>,
    breaches: usize,
    unknown: Vec<String>,
}

impl Rows {
    fn push(&mut self, what: &str, value: &str, verdict: Verdict) {
        match &verdict {
            Verdict::Breach(_) => self.breaches += 1,
            Verdict::Unknown(_) => self.unknown.push(what.to_owned()),
            Verdict::Ok(_) | Verdict::Info => {}
        }
        self.lines.push(verdict_line(what, value, &verdict));
    }

    /// "No threshold breached" only says something about what could be read: the
    /// headline says how much could not.
    fn headline(&self) -> String {
        let breached = match self.breaches {
            0 => "no threshold breached".to_owned(),
            1 => "1 threshold breached".to_owned(),
            n => format!("{n} thresholds breached"),
        };
        match self.unknown.len() {
            0 => format!("OdorDiff-2: {breached}"),
            n => format!(
                "OdorDiff-2: {breached}; {n} of {} readings unknown",
                self.lines.len()
            ),
        }
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::status::OpenWork;

    fn text(m: &Message) -> String {
        m.blocks
            .iter()
            .map(|b| match b {
                Block::Header(t) | Block::Section(t) | Block::Context(t) => t.clone(),
                Block::Fields(f) => f
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                Block::Divider | Block::Actions(_) => String::new(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn rates(rows: &[(&str, f64)]) -> Vec<(String, f64)> {
        rows.iter().map(|(e, r)| ((*e).to_owned(), *r)).collect()
    }

    #[test]
    fn the_error_breakdown_puts_the_most_errors_first_and_keeps_the_top() {
        let errors = rates(&[
            ("/search", 0.5),
            ("/generate", 1.5),
            ("/health", 0.0),
            ("/orphan", 0.2),
            ("/b", 0.5),
        ]);
        let requests = rates(&[
            ("/generate", 50.0),
            ("/search", 30.0),
            ("/health", 20.0),
            ("/b", 10.0),
        ]);
        let rows = error_breakdown(&errors, &requests, 10);
        let order: Vec<&str> = rows.iter().map(|r| r.endpoint.as_str()).collect();
        // Equal 5xx rates: the higher ratio first (/b is 5%, /search 1.7%).
        assert_eq!(order, ["/generate", "/b", "/search", "/orphan"]);
        assert_eq!(rows[0].ratio(), Some(0.03));
        assert_eq!(rows[3].ratio(), None, "no request series");
        assert_eq!(error_breakdown(&errors, &requests, 2).len(), 2);
        assert!(error_breakdown(&[], &requests, 5).is_empty());
    }

    #[test]
    fn the_error_breakdown_judges_each_endpoint_and_escapes_its_label() {
        let t = Thresholds::default();
        let rows = vec![
            EndpointErrors {
                endpoint: "/generate".into(),
                errors: 1.5,
                requests: 50.0,
            },
            EndpointErrors {
                endpoint: "<!channel>".into(),
                errors: 0.001,
                requests: 1000.0,
            },
        ];
        let m = render_error_breakdown(
            &Ok(rows),
            "endpoint",
            Duration::from_secs(300),
            &t,
            &Links::default(),
        );
        let shown = text(&m);
        assert!(
            shown.contains("🔴 *`/generate`*: 3.00% of 50.00 req/s (1.50 5xx/s)"),
            "{shown}"
        );
        assert!(shown.contains("0.00% of 1000.00 req/s"), "{shown}");
        assert!(!shown.contains("<!channel>"), "{shown}");
        assert!(shown.contains("over 5m"), "{shown}");
        let none = text(&render_error_breakdown(
            &Ok(Vec::new()),
            "endpoint",
            Duration::from_secs(300),
            &t,
            &Links::default(),
        ));
        assert!(none.contains("no 5xx answers"), "{none}");
    }

    #[test]
    fn disk_shows_each_volume_by_claim_fullest_first_and_the_largest_logs() {
        let gib = 1024.0 * 1024.0 * 1024.0;
        let used = rates(&[("redis-data", 1.0 * gib), ("postgres-data", 95.0 * gib)]);
        let capacity = rates(&[("redis-data", 10.0 * gib), ("postgres-data", 100.0 * gib)]);
        let all = volumes(&used, &capacity);
        assert_eq!(all[0].pvc, "postgres-data");
        assert_eq!(all[1].used_ratio(), Some(0.1));
        let d = DiskPicture {
            volumes: Ok(all),
            logs: Ok(rates(&[("api-1", 2.0 * gib), ("api-2", 5.0 * gib)])),
        };
        let t = Thresholds::default();
        let shown = text(&render_disk(&d, None, &t, &Links::default()));
        assert!(
            shown.contains("🔴 *`postgres-data`*: 95.00% used (95.0 GiB of 100.0 GiB)"),
            "{shown}"
        );
        assert!(shown.contains("✅ *`redis-data`*: 10.00% used"), "{shown}");
        assert!(
            shown.find("`api-2`").unwrap() < shown.find("`api-1`").unwrap(),
            "{shown}"
        );
        let one = text(&render_disk(&d, Some("redis-data"), &t, &Links::default()));
        assert!(
            one.contains("redis-data") && !one.contains("postgres-data"),
            "{one}"
        );
        let none = text(&render_disk(&d, Some("gone"), &t, &Links::default()));
        assert!(none.contains("no kubelet volume stats for it"), "{none}");
    }

    #[test]
    fn db_sizes_list_the_largest_relations_and_say_why_a_directory_is_unknown() {
        let s = DbSizes {
            database: Ok(3 * 1024 * 1024 * 1024),
            relations: Ok(vec![
                ("public.events".into(), 2 * 1024 * 1024 * 1024),
                ("public.<b>".into(), 1024),
            ]),
            wal: Ok((12, 192 * 1024 * 1024)),
            logs: Err(ProbeError::Server {
                server: "PostgreSQL",
                message: "permission denied for function pg_ls_logdir (42501)".into(),
            }),
        };
        let shown = text(&render_db_sizes(&s, &Links::default()));
        assert!(shown.contains("Database size: 3.0 GiB"), "{shown}");
        assert!(shown.contains("• `public.events`: 2.0 GiB"), "{shown}");
        assert!(!shown.contains("<b>"), "{shown}");
        assert!(
            shown.contains("*WAL*: 12 files, 192.0 MiB (`pg_ls_waldir()`)"),
            "{shown}"
        );
        assert!(
            shown.contains("❔ *Server logs*: unknown: PostgreSQL: permission denied"),
            "{shown}"
        );
    }

    #[test]
    fn connectivity_says_whom_it_connected_as_and_judges_a_refusal() {
        let ok = AppConnection {
            user: "app".into(),
            database: "odordiff".into(),
            took: Duration::from_millis(12),
        };
        let shown = text(&render_connectivity(
            &Ok(ok),
            Some("pgbouncer:6432"),
            &Links::default(),
        ));
        assert!(
            shown.contains("✅ *Connection as the API makes it*: `app` to `odordiff` through `pgbouncer:6432` in 12 ms"),
            "{shown}"
        );
        let refused = text(&render_connectivity(
            &Err(ProbeError::Auth),
            Some("pgbouncer:6432"),
            &Links::default(),
        ));
        assert!(
            refused.contains("🔴") && refused.contains("credentials refused"),
            "{refused}"
        );
        let unset = text(&render_connectivity(
            &Err(ProbeError::not_configured(
                "The API's database connection",
                "probes.app_database_url_file",
            )),
            None,
            &Links::default(),
        ));
        assert!(
            unset.contains("❔") && unset.contains("probes.app_database_url_file"),
            "{unset}"
        );
    }

    #[test]
    fn connections_near_the_limit_breach() {
        let c = ConnectionCounts {
            by_state: vec![("active".into(), 85), ("idle".into(), 10)],
            max: 100,
        };
        assert!(matches!(c.verdict(), Verdict::Breach(_)));
        let m = render_connections(&Ok(c), &Ok(10 * 1024 * 1024), &Links::default());
        let t = text(&m);
        assert!(
            t.contains("🔴 *Connections*: 95 (95 of 100 max_connections: nearly exhausted)"),
            "{t}"
        );
        assert!(t.contains("• active: 85"), "{t}");
        assert!(t.contains("Database size: 10.0 MiB"), "{t}");
    }

    #[test]
    fn waiting_clients_breach_the_pool_verdict() {
        let pool = PoolStats {
            database: "odordiff".into(),
            user: "app".into(),
            clients_active: 5,
            clients_waiting: 3,
            servers_active: 2,
            servers_idle: 0,
            max_wait_secs: 1.5,
            pool_mode: "transaction".into(),
            avg_query_us: 2500,
        };
        let t = text(&render_pools(&Ok(vec![pool]), &Links::default()));
        assert!(t.contains("🔴 *odordiff/app*"), "{t}");
        assert!(t.contains("3 clients waiting, longest 1.5s"), "{t}");
    }

    #[test]
    fn certificates_close_to_expiry_breach() {
        let cert = |days: i64| CertInfo {
            issuer: "CN=test".into(),
            names: vec!["api.odordiff.ai".into()],
            not_after_unix: 0,
            seconds_left: days * 86_400 + 60,
        };
        assert!(matches!(cert(30).verdict(), Verdict::Ok(_)));
        assert!(matches!(cert(5).verdict(), Verdict::Breach(_)));
        assert!(matches!(cert(-2).verdict(), Verdict::Breach(d) if d.contains("expired")));
    }

    fn sample_picture() -> Picture {
        Picture {
            deployments: vec![
                ("odordiff-api".into(), Ok((3, 3))),
                ("redis".into(), Ok((0, 1))),
                ("postgres".into(), Err("Kubernetes is not available".into())),
            ],
            signals: vec![
                (Signal::ErrorRate, Ok(0.02), Source::Prometheus),
                (
                    Signal::P95Latency,
                    Err(ProbeError::Timeout(crate::domain::probe::Limit::new(
                        Duration::from_millis(1800),
                        "60% of probes.timeout",
                    ))),
                    Source::Prometheus,
                ),
            ],
            health: vec![HealthCheck {
                path: "/health".into(),
                answer: Ok(HealthAnswer {
                    status: 200,
                    latency: Duration::from_millis(12),
                }),
            }],
            db: Err(ProbeError::Unreachable),
            cache: Ok(CacheStats {
                hits: 80,
                misses: 20,
                evicted: 0,
                expired: 0,
                used_memory: 1024,
                max_memory: 0,
            }),
            odorbot: SelfStatus {
                version: "0.1.0",
                uptime: Duration::from_secs(60),
                slack_connections: 2,
                slack_connections_wanted: 2,
                store_backend: "sqlite",
                store: Ok(OpenWork {
                    approvals: 0,
                    incidents: 0,
                }),
                queue_depth: 0,
            },
        }
    }

    #[test]
    fn the_picture_counts_breaches_and_shows_unknowns() {
        let m = sample_picture().render(&Thresholds::default(), &Links::default());
        assert_eq!(
            m.text,
            "OdorDiff-2: 3 thresholds breached; 3 of 8 readings unknown"
        );
        assert!(
            text(&m).contains("Could not read: postgres, p95 latency, Database connections"),
            "{}",
            text(&m)
        );
        assert!(
            text(&m).contains("✅ *odordiff-api*: 3/3 pods ready (all ready)"),
            "{}",
            text(&m)
        );
        assert!(
            text(&m).contains("🔴 *redis*: 0/1 pods ready (1 not ready)"),
            "{}",
            text(&m)
        );
        assert!(
            text(&m).contains("❔ *postgres*: unknown: Kubernetes is not available"),
            "{}",
            text(&m)
        );
        let t = text(&m);
        assert!(t.contains("🔴 *Error rate (5xx)*: 2.00%"), "{t}");
        assert!(
            t.contains("❔ *p95 latency*: unknown: no answer within 1.8s (60% of probes.timeout)"),
            "{t}"
        );
        assert!(
            t.contains("❔ *Database connections*: unknown: connection refused"),
            "{t}"
        );
        assert!(t.contains("🔴 *Cache hit rate*: 80.00%"), "{t}");
        assert!(t.contains("2 of 2 socket connections open"), "{t}");
    }

    /// A scrape's figures cover the time since the service started: each row says so, and
    /// the scrape is named as a source only when it gave a reading.
    #[test]
    fn scrape_rows_are_marked_and_a_failed_scrape_is_no_source() {
        let mut picture = sample_picture();
        picture.signals = vec![
            (Signal::ErrorRate, Ok(0.001), Source::Scrape),
            (
                Signal::P95Latency,
                Err(ProbeError::Unreachable),
                Source::Prometheus,
            ),
        ];
        let t = text(&picture.render(&Thresholds::default(), &Links::default()));
        assert!(
            t.contains("✅ *Error rate (5xx)*: 0.10% since start, from /metrics"),
            "{t}"
        );
        assert!(
            t.contains("Signals from a /metrics scrape (cumulative since the service started)"),
            "{t}"
        );
        picture.signals[0] = (
            Signal::ErrorRate,
            Err(ProbeError::Unreachable),
            Source::Prometheus,
        );
        let t = text(&picture.render(&Thresholds::default(), &Links::default()));
        assert!(!t.contains("Signals from"), "{t}");
        assert!(!t.contains("from /metrics"), "{t}");
    }

    #[test]
    fn the_headline_says_nothing_was_breached_only_when_everything_was_read() {
        let mut picture = sample_picture();
        picture.deployments = vec![("odordiff-api".into(), Ok((3, 3)))];
        picture.signals.clear();
        picture.db = Ok(ConnectionCounts {
            by_state: vec![("active".into(), 3)],
            max: 100,
        });
        picture.cache = Err(ProbeError::Unreachable);
        let m = picture.render(&Thresholds::default(), &Links::default());
        assert_eq!(
            m.text,
            "OdorDiff-2: no threshold breached; 1 of 4 readings unknown"
        );
        picture.cache = Ok(CacheStats {
            hits: 99,
            misses: 1,
            evicted: 0,
            expired: 0,
            used_memory: 1,
            max_memory: 0,
        });
        let m = picture.render(&Thresholds::default(), &Links::default());
        assert_eq!(m.text, "OdorDiff-2: no threshold breached");
        assert!(!text(&m).contains("Could not read"));
    }
}
