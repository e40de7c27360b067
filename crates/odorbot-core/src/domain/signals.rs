//! The runbook's live signals and the verdicts odorbot gives on them: pure functions of
//! a reading and the thresholds.

use std::fmt;
use std::str::FromStr;

use super::probe::ProbeError;

/// A service signal the runbook watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Requests per second.
    RequestRate,
    /// 95th percentile request duration, seconds.
    P95Latency,
    /// Share of requests answered 5xx (0–1).
    ErrorRate,
    /// Open HTTP connections.
    ActiveConnections,
    DailyActiveUsers,
    /// Generation requests per second.
    GenerationRequests,
    /// Share of generation requests that succeeded (0–1).
    GenerationSuccess,
    /// Used share of the busiest persistent volume (0–1).
    VolumeUsage,
}

/// The signal names users type, in [`Signal::ALL`] order.
pub const SIGNAL_NAMES: &[&str] = &[
    "request_rate",
    "p95_latency",
    "error_rate",
    "active_connections",
    "daily_active_users",
    "generation_requests",
    "generation_success",
    "volume_usage",
];

impl Signal {
    pub const ALL: [Signal; 8] = [
        Self::RequestRate,
        Self::P95Latency,
        Self::ErrorRate,
        Self::ActiveConnections,
        Self::DailyActiveUsers,
        Self::GenerationRequests,
        Self::GenerationSuccess,
        Self::VolumeUsage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::RequestRate => "request_rate",
            Self::P95Latency => "p95_latency",
            Self::ErrorRate => "error_rate",
            Self::ActiveConnections => "active_connections",
            Self::DailyActiveUsers => "daily_active_users",
            Self::GenerationRequests => "generation_requests",
            Self::GenerationSuccess => "generation_success",
            Self::VolumeUsage => "volume_usage",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::RequestRate => "Request rate",
            Self::P95Latency => "p95 latency",
            Self::ErrorRate => "Error rate (5xx)",
            Self::ActiveConnections => "Active connections",
            Self::DailyActiveUsers => "Daily active users",
            Self::GenerationRequests => "Generation requests",
            Self::GenerationSuccess => "Generation success",
            Self::VolumeUsage => "Volume usage",
        }
    }

    /// The value as people read it.
    pub fn format(self, value: f64) -> String {
        match self {
            Self::RequestRate | Self::GenerationRequests => format!("{value:.1}/s"),
            Self::P95Latency => format!("{:.0} ms", value * 1000.0),
            Self::ErrorRate | Self::GenerationSuccess | Self::VolumeUsage => {
                format!("{:.2}%", value * 100.0)
            }
            Self::ActiveConnections | Self::DailyActiveUsers => format!("{value:.0}"),
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Signal {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|sig| sig.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|s| s.name()).collect();
                format!("is not a signal; one of {}", names.join(", "))
            })
    }
}

/// The runbook's alert thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// High Error Rate: above this share of 5xx.
    pub error_rate_max: f64,
    /// High Response Time: p95 above this many seconds.
    pub p95_max_secs: f64,
    /// Disk Space Low: less than this share free.
    pub disk_free_min: f64,
    /// Cache Hit Rate Low: below this share of hits.
    pub cache_hit_min: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            error_rate_max: 0.01,
            p95_max_secs: 1.0,
            disk_free_min: 0.10,
            cache_hit_min: 0.90,
        }
    }
}

/// What odorbot concludes from a reading.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Within the runbook's threshold.
    Ok(String),
    /// Beyond it: the matching alert's runbook entry applies.
    Breach(String),
    /// A signal without a threshold: shown as information.
    Info,
    /// The source could not say, with why.
    Unknown(String),
}

impl Verdict {
    pub fn mark(&self) -> &'static str {
        match self {
            Self::Ok(_) => "✅",
            Self::Breach(_) => "🔴",
            Self::Info => "ℹ️",
            Self::Unknown(_) => "❔",
        }
    }
}

/// A signal's reading: a value, or why there is none.
pub type Reading = Result<f64, ProbeError>;

/// Where a reading came from. A scrape's ratios and percentiles cover the time since the
/// service started, not the rate window, so every row read from one says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Prometheus,
    Scrape,
}

impl Source {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Prometheus => "Prometheus",
            Self::Scrape => "a /metrics scrape (cumulative since the service started)",
        }
    }

    /// What a row read from this source adds to its value.
    fn row_mark(self) -> &'static str {
        match self {
            Self::Prometheus => "",
            Self::Scrape => " since start, from /metrics",
        }
    }
}

/// A signal's verdict and its value as a row shows it, marked when it is a scrape's.
pub fn signal_row(
    signal: Signal,
    reading: &Reading,
    source: Source,
    t: &Thresholds,
) -> (Verdict, String) {
    let verdict = judge(signal, reading, t);
    let value = match reading {
        Ok(v) => format!("{}{}", signal.format(*v), source.row_mark()),
        Err(_) => String::new(),
    };
    (verdict, value)
}

/// Judges a service signal against the thresholds.
/// A Prometheus label name, safe to put in PromQL as is: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn judge(signal: Signal, reading: &Reading, t: &Thresholds) -> Verdict {
    let value = match reading {
        Ok(v) if v.is_finite() => *v,
        Ok(_) => return Verdict::Unknown("no data (not a number)".into()),
        Err(why) => return Verdict::Unknown(why.to_string()),
    };
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    match signal {
        Signal::ErrorRate => limit(
            value > t.error_rate_max,
            format!("threshold {}", pct(t.error_rate_max)),
        ),
        Signal::P95Latency => limit(
            value > t.p95_max_secs,
            format!("threshold {:.0} ms", t.p95_max_secs * 1000.0),
        ),
        Signal::VolumeUsage => {
            let free = 1.0 - value;
            limit(
                free < t.disk_free_min,
                format!(
                    "{} free, threshold {} free",
                    pct(free),
                    pct(t.disk_free_min)
                ),
            )
        }
        _ => Verdict::Info,
    }
}

/// Judges a cache hit rate (hits over hits and misses).
pub fn judge_cache_hit_rate(hits: u64, misses: u64, t: &Thresholds) -> Verdict {
    if hits + misses == 0 {
        return Verdict::Unknown("no lookups recorded yet".into());
    }
    let rate = hits as f64 / (hits + misses) as f64;
    limit(
        rate < t.cache_hit_min,
        format!("threshold {:.0}%", t.cache_hit_min * 100.0),
    )
}

fn limit(breached: bool, detail: String) -> Verdict {
    if breached {
        Verdict::Breach(detail)
    } else {
        Verdict::Ok(detail)
    }
}

/// Where people look next; shown under diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    pub dashboard: Option<String>,
    pub logs: Option<String>,
    pub traces: Option<String>,
}

impl Links {
    /// A context line such as `<url|Dashboard> · <url|Logs>`, or `None` when none is set.
    pub fn render(&self) -> Option<String> {
        let parts: Vec<String> = [
            (&self.dashboard, "Dashboard"),
            (&self.logs, "Logs"),
            (&self.traces, "Traces"),
        ]
        .into_iter()
        .filter_map(|(url, name)| url.as_ref().map(|u| format!("<{u}|{name}>")))
        .collect();
        (!parts.is_empty()).then(|| parts.join(" · "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_are_prometheus_label_names() {
        for ok in ["endpoint", "route", "_path", "handler_2"] {
            assert!(is_label_name(ok), "{ok}");
        }
        for bad in ["", "2xx", "end-point", "path}", "a b", "é"] {
            assert!(!is_label_name(bad), "{bad}");
        }
    }

    #[test]
    fn verdicts_follow_the_runbook_thresholds() {
        let t = Thresholds::default();
        assert!(matches!(
            judge(Signal::ErrorRate, &Ok(0.02), &t),
            Verdict::Breach(_)
        ));
        assert!(matches!(
            judge(Signal::ErrorRate, &Ok(0.01), &t),
            Verdict::Ok(_)
        ));
        assert!(matches!(
            judge(Signal::P95Latency, &Ok(1.5), &t),
            Verdict::Breach(_)
        ));
        assert!(matches!(
            judge(Signal::P95Latency, &Ok(0.4), &t),
            Verdict::Ok(_)
        ));
        assert_eq!(
            judge(Signal::VolumeUsage, &Ok(0.95), &t),
            Verdict::Breach("5% free, threshold 10% free".into())
        );
        assert!(matches!(
            judge(Signal::VolumeUsage, &Ok(0.5), &t),
            Verdict::Ok(_)
        ));
        assert_eq!(judge(Signal::RequestRate, &Ok(12.0), &t), Verdict::Info);
        assert_eq!(
            judge(Signal::ErrorRate, &Err(ProbeError::Unreachable), &t),
            Verdict::Unknown("connection refused or unreachable".into())
        );
        assert!(matches!(
            judge(Signal::ErrorRate, &Ok(f64::NAN), &t),
            Verdict::Unknown(_)
        ));
    }

    #[test]
    fn cache_hit_rate_is_hits_over_lookups() {
        let t = Thresholds::default();
        assert!(matches!(
            judge_cache_hit_rate(80, 20, &t),
            Verdict::Breach(_)
        ));
        assert!(matches!(judge_cache_hit_rate(95, 5, &t), Verdict::Ok(_)));
        assert!(matches!(
            judge_cache_hit_rate(0, 0, &t),
            Verdict::Unknown(_)
        ));
    }

    #[test]
    fn signal_names_match_the_signals() {
        let names: Vec<&str> = Signal::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names, SIGNAL_NAMES);
    }

    #[test]
    fn signals_parse_and_format() {
        assert_eq!("P95_LATENCY".parse::<Signal>(), Ok(Signal::P95Latency));
        assert!(
            "latency"
                .parse::<Signal>()
                .unwrap_err()
                .contains("p95_latency")
        );
        assert_eq!(Signal::P95Latency.format(1.5), "1500 ms");
        assert_eq!(Signal::ErrorRate.format(0.02), "2.00%");
        assert_eq!(Signal::RequestRate.format(100.0), "100.0/s");
    }

    #[test]
    fn links_render_only_what_is_set() {
        assert_eq!(Links::default().render(), None);
        let l = Links {
            dashboard: Some("https://grafana.example".into()),
            logs: None,
            traces: Some("https://jaeger.example".into()),
        };
        assert_eq!(
            l.render().unwrap(),
            "<https://grafana.example|Dashboard> · <https://jaeger.example|Traces>"
        );
    }
}
