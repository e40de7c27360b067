//! Why a probe has no answer, as a value: the adapters (HTTP, PostgreSQL, Redis, TLS) name
//! the cause, and the renderers and the failure reply turn it into words in one place.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

use super::args::format_duration;

/// A bound on a wait and the setting it comes from, so a timeout can say which limit
/// applied ("no answer within 2s (probes.timeout)").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub after: Duration,
    /// Where the bound comes from, e.g. `probes.timeout` or `60% of probes.timeout`.
    pub setting: &'static str,
}

impl Limit {
    pub const fn new(after: Duration, setting: &'static str) -> Self {
        Self { after, setting }
    }

    /// The error of a wait that ran out of this limit.
    pub fn expired(self) -> ProbeError {
        ProbeError::Timeout(self)
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.after.subsec_millis();
        if millis == 0 || self.after.as_secs() >= 60 {
            write!(f, "{}", format_duration(self.after))?;
        } else if self.after.as_secs() == 0 {
            write!(f, "{millis}ms")?;
        } else {
            write!(f, "{:.1}s", self.after.as_secs_f64())?;
        }
        write!(f, " ({})", self.setting)
    }
}

/// Why a probe could not answer. Reasons are short and never carry a URL or a password.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProbeError {
    /// The source has no setting, so nothing was asked.
    #[error("{what} is not configured ({key})")]
    NotConfigured {
        what: &'static str,
        key: &'static str,
    },
    /// The setting is there but cannot be used (an unparsable URL, say).
    #[error("{what} cannot be used: {why} ({key})")]
    BadConfig {
        what: &'static str,
        key: &'static str,
        why: String,
    },
    #[error("no answer within {0}")]
    Timeout(Limit),
    #[error("connection refused or unreachable")]
    Unreachable,
    #[error("TLS failed: {0}")]
    Tls(String),
    #[error("credentials refused")]
    Auth,
    #[error("answered HTTP {0}")]
    HttpStatus(u16),
    /// An answer that is not what the protocol promises.
    #[error("unreadable answer: {0}")]
    Protocol(String),
    /// The server answered with an error of its own.
    #[error("{server}: {message}")]
    Server {
        server: &'static str,
        message: String,
    },
    /// The source answered, without a value.
    #[error("no data ({0})")]
    NoData(String),
    /// The source cannot give this reading at all.
    #[error("needs {0}")]
    Unsupported(String),
    /// Prometheus could not answer and the `/metrics` scrape that stood in could not either.
    #[error("{}", fallback(primary, scrape))]
    Fallback {
        primary: Box<ProbeError>,
        scrape: Box<ProbeError>,
    },
}

fn fallback(primary: &ProbeError, scrape: &ProbeError) -> String {
    match primary {
        ProbeError::NotConfigured { .. } => format!("{primary}; /metrics scrape: {scrape}"),
        _ => format!("Prometheus: {primary}; /metrics scrape: {scrape}"),
    }
}

impl ProbeError {
    pub const fn not_configured(what: &'static str, key: &'static str) -> Self {
        Self::NotConfigured { what, key }
    }

    /// The metric label of the cause: a small fixed set (see [`ProbeError::samples`]).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotConfigured { .. } => "probe_not_configured",
            Self::BadConfig { .. } => "probe_bad_config",
            Self::Timeout(_) => "probe_timeout",
            Self::Unreachable => "probe_unreachable",
            Self::Tls(_) => "probe_tls",
            Self::Auth => "probe_auth",
            Self::HttpStatus(_) => "probe_http_status",
            Self::Protocol(_) => "probe_protocol",
            Self::Server { .. } => "probe_server",
            Self::NoData(_) => "probe_no_data",
            Self::Unsupported(_) => "probe_unsupported",
            // What finally failed is the scrape.
            Self::Fallback { scrape, .. } => scrape.kind(),
        }
    }

    /// Whether the source answered that it has no value (as opposed to not answering).
    pub fn is_no_data(&self) -> bool {
        matches!(self, Self::NoData(_))
    }

    /// Whether the cause is missing configuration rather than a broken source.
    pub fn is_not_configured(&self) -> bool {
        matches!(self, Self::NotConfigured { .. })
    }

    /// One value of every variant, for the list of metric labels; a test checks it is
    /// exhaustive.
    pub fn samples() -> Vec<ProbeError> {
        vec![
            Self::not_configured("Redis", "ODORBOT_REDIS_URL"),
            Self::BadConfig {
                what: "Redis",
                key: "ODORBOT_REDIS_URL",
                why: "not a URL".into(),
            },
            Limit::new(Duration::from_secs(2), "probes.timeout").expired(),
            Self::Unreachable,
            Self::Tls("invalid peer certificate".into()),
            Self::Auth,
            Self::HttpStatus(503),
            Self::Protocol("not JSON".into()),
            Self::Server {
                server: "Redis",
                message: "ERR unknown command".into(),
            },
            Self::NoData("no matching series".into()),
            Self::Unsupported("Prometheus".into()),
            Self::Fallback {
                primary: Box::new(Self::Unreachable),
                scrape: Box::new(Self::HttpStatus(404)),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adding a variant breaks this match; the sample then has to follow.
    fn index(e: &ProbeError) -> usize {
        match e {
            ProbeError::NotConfigured { .. } => 0,
            ProbeError::BadConfig { .. } => 1,
            ProbeError::Timeout(_) => 2,
            ProbeError::Unreachable => 3,
            ProbeError::Tls(_) => 4,
            ProbeError::Auth => 5,
            ProbeError::HttpStatus(_) => 6,
            ProbeError::Protocol(_) => 7,
            ProbeError::Server { .. } => 8,
            ProbeError::NoData(_) => 9,
            ProbeError::Unsupported(_) => 10,
            ProbeError::Fallback { .. } => 11,
        }
    }

    #[test]
    fn samples_cover_every_variant_once() {
        let mut seen: Vec<usize> = ProbeError::samples().iter().map(index).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..12).collect::<Vec<_>>());
    }

    #[test]
    fn reasons_name_the_cause_and_the_limit_that_applied() {
        let cases = [
            (
                ProbeError::not_configured("The service URL", "probes.health_url"),
                "The service URL is not configured (probes.health_url)",
            ),
            (
                Limit::new(Duration::from_secs(2), "probes.timeout").expired(),
                "no answer within 2s (probes.timeout)",
            ),
            (
                Limit::new(Duration::from_millis(1200), "60% of probes.timeout").expired(),
                "no answer within 1.2s (60% of probes.timeout)",
            ),
            (
                Limit::new(Duration::from_millis(800), "the rest of probes.timeout").expired(),
                "no answer within 800ms (the rest of probes.timeout)",
            ),
            (
                Limit::new(Duration::from_secs(3600), "the vacuum limit").expired(),
                "no answer within 1h (the vacuum limit)",
            ),
            (
                ProbeError::Fallback {
                    primary: Box::new(ProbeError::Unreachable),
                    scrape: Box::new(ProbeError::HttpStatus(404)),
                },
                "Prometheus: connection refused or unreachable; /metrics scrape: answered HTTP 404",
            ),
            (
                ProbeError::Fallback {
                    primary: Box::new(ProbeError::not_configured(
                        "Prometheus",
                        "probes.prometheus_url",
                    )),
                    scrape: Box::new(ProbeError::Unsupported("Prometheus".into())),
                },
                "Prometheus is not configured (probes.prometheus_url); /metrics scrape: needs Prometheus",
            ),
        ];
        for (error, want) in cases {
            assert_eq!(error.to_string(), want);
        }
    }

    #[test]
    fn kinds_are_distinct_labels_and_a_fallback_counts_as_its_scrape() {
        let samples = ProbeError::samples();
        let mut kinds: Vec<&str> = samples[..samples.len() - 1]
            .iter()
            .map(ProbeError::kind)
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), samples.len() - 1);
        assert!(kinds.iter().all(|k| k.starts_with("probe_")));
        assert_eq!(samples[samples.len() - 1].kind(), "probe_http_status");
    }
}
