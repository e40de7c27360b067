//! The service's signals from Prometheus (PromQL over the HTTP API), or, when Prometheus
//! cannot answer, from a scrape of the service's own `/metrics` in the text format.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::http::HttpClient;
use super::{Limit, ProbeError};
use crate::domain::signals::{Reading, Signal};

/// The PromQL expression for a signal, for OdorDiff-2's API `job` (its volumes in
/// `namespace`), with rates over `window` (a Prometheus duration such as `5m`).
pub fn query(signal: Signal, job: &str, namespace: &str, window: &str) -> String {
    let sel = format!("job=\"{job}\"");
    match signal {
        Signal::RequestRate => format!("sum(rate(http_requests_total{{{sel}}}[{window}]))"),
        Signal::ErrorRate => format!(
            "sum(rate(http_requests_total{{{sel},status=~\"5..\"}}[{window}])) / sum(rate(http_requests_total{{{sel}}}[{window}]))"
        ),
        Signal::P95Latency => format!(
            "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{{sel}}}[{window}])))"
        ),
        Signal::ActiveConnections => format!("sum(http_connections_active{{{sel}}})"),
        Signal::DailyActiveUsers => format!("max(odordiff_daily_active_users{{{sel}}})"),
        Signal::GenerationRequests => {
            format!("sum(rate(odordiff_generation_requests_total{{{sel}}}[{window}]))")
        }
        Signal::GenerationSuccess => format!(
            "sum(rate(odordiff_generation_success_total{{{sel}}}[{window}])) / sum(rate(odordiff_generation_requests_total{{{sel}}}[{window}]))"
        ),
        Signal::VolumeUsage => {
            let ns = format!("namespace=\"{namespace}\"");
            format!(
                "max(kubelet_volume_stats_used_bytes{{{ns}}} / kubelet_volume_stats_capacity_bytes{{{ns}}})"
            )
        }
    }
}

/// The error breakdown's two PromQL expressions: 5xx answers a second by `label`, and all
/// answers a second by `label`. `label` is a checked label name (`probes.endpoint_label`).
pub fn breakdown_queries(job: &str, label: &str, window: &str) -> (String, String) {
    let sel = format!("job=\"{job}\"");
    (
        format!("sum by ({label}) (rate(http_requests_total{{{sel},status=~\"5..\"}}[{window}]))"),
        format!("sum by ({label}) (rate(http_requests_total{{{sel}}}[{window}]))"),
    )
}

#[derive(Debug, Deserialize)]
struct ApiAnswer {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum ApiData {
    Vector(Vec<VectorSample>),
    Scalar((f64, String)),
    Matrix(Vec<MatrixSeries>),
    String(serde::de::IgnoredAny),
}

#[derive(Debug, Deserialize)]
struct VectorSample {
    #[serde(default)]
    metric: std::collections::BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Debug, Deserialize)]
struct MatrixSeries {
    values: Vec<(f64, String)>,
}

/// Prometheus' HTTP API.
#[derive(Clone)]
pub struct Prometheus {
    base: Url,
    http: HttpClient,
}

impl Prometheus {
    pub fn new(base: Url, http: HttpClient) -> Self {
        Self { base, http }
    }

    fn url(&self, path: &str, params: &[(&str, &str)]) -> Result<Url, ProbeError> {
        let mut url = self.base.join(path).map_err(|e| ProbeError::BadConfig {
            what: "Prometheus",
            key: "probes.prometheus_url",
            why: e.to_string(),
        })?;
        url.query_pairs_mut().extend_pairs(params);
        Ok(url)
    }

    async fn call(&self, url: &Url, limit: Limit) -> Result<ApiData, ProbeError> {
        let answer = self.http.get(url, limit).await?;
        let Ok(parsed) = serde_json::from_str::<ApiAnswer>(&answer.body) else {
            return Err(if answer.status == 200 {
                ProbeError::Protocol("not a Prometheus API answer".into())
            } else {
                ProbeError::HttpStatus(answer.status)
            });
        };
        if parsed.status != "success" {
            return Err(ProbeError::Server {
                server: "Prometheus",
                message: parsed
                    .error
                    .unwrap_or_else(|| "query failed".into())
                    .chars()
                    .take(160)
                    .collect(),
            });
        }
        parsed
            .data
            .ok_or_else(|| ProbeError::Protocol("a Prometheus answer without data".into()))
    }

    /// An instant query reduced to one number.
    ///
    /// # Errors
    /// Why there is no number: unreachable, an error from Prometheus, or no series.
    pub async fn instant(&self, promql: &str, limit: Limit) -> Reading {
        let url = self.url("api/v1/query", &[("query", promql)])?;
        match self.call(&url, limit).await? {
            ApiData::Vector(samples) => match samples.as_slice() {
                [] => Err(ProbeError::NoData("no matching series".into())),
                [one] => parse_value(&one.value.1),
                _ => Err(ProbeError::Protocol(format!(
                    "{} series where one was expected",
                    samples.len()
                ))),
            },
            ApiData::Scalar((_, v)) => parse_value(&v),
            _ => Err(unexpected_type()),
        }
    }

    /// An instant query's series by the value of `label` (series without it are one
    /// entry, `""`), at most `MAX_SERIES`.
    ///
    /// # Errors
    /// As [`Prometheus::instant`], but no series is an empty list.
    pub async fn by_label(
        &self,
        promql: &str,
        label: &str,
        limit: Limit,
    ) -> Result<Vec<(String, f64)>, ProbeError> {
        /// A bound on what one answer may hold: a label with thousands of values (a
        /// path with ids in it) is cut, not copied whole into a reply.
        const MAX_SERIES: usize = 500;
        let url = self.url("api/v1/query", &[("query", promql)])?;
        match self.call(&url, limit).await? {
            ApiData::Vector(samples) => Ok(samples
                .into_iter()
                .take(MAX_SERIES)
                .filter_map(|s| {
                    let value = parse_value(&s.value.1).ok()?;
                    Some((s.metric.get(label).cloned().unwrap_or_default(), value))
                })
                .collect()),
            _ => Err(unexpected_type()),
        }
    }

    /// A range query over the last `span`, one series reduced to `(unix seconds, value)`.
    ///
    /// # Errors
    /// As [`Prometheus::instant`].
    pub async fn range(
        &self,
        promql: &str,
        span: Duration,
        step: Duration,
        limit: Limit,
    ) -> Result<Vec<(f64, f64)>, ProbeError> {
        let end = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let start = (end - span.as_secs_f64()).to_string();
        let (end, step) = (end.to_string(), step.as_secs().max(1).to_string());
        let url = self.url(
            "api/v1/query_range",
            &[
                ("query", promql),
                ("start", &start),
                ("end", &end),
                ("step", &step),
            ],
        )?;
        match self.call(&url, limit).await? {
            ApiData::Matrix(series) => match series.into_iter().next() {
                None => Err(ProbeError::NoData("no matching series".into())),
                Some(s) => s
                    .values
                    .iter()
                    .map(|(t, v)| parse_value(v).map(|v| (*t, v)))
                    .collect(),
            },
            _ => Err(unexpected_type()),
        }
    }
}

fn unexpected_type() -> ProbeError {
    ProbeError::Protocol("unexpected result type".into())
}

fn parse_value(v: &str) -> Reading {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(ProbeError::NoData(v.chars().take(40).collect())),
    }
}

/// One sample of the Prometheus text format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the Prometheus text exposition format; malformed lines are skipped, since one
/// odd line must not hide every other signal.
pub fn parse_text(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(mut body) = rest.strip_prefix('{') {
        loop {
            body = body.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
            if let Some(after) = body.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after_eq) = body.split_once('=')?;
            let mut chars = after_eq.strip_prefix('"')?.char_indices();
            let mut value = String::new();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    (i, '"') => break i,
                    (_, other) => value.push(other),
                }
            };
            labels.push((key.trim().to_owned(), value));
            // `end` indexes the closing quote within the text after the opening one.
            body = &after_eq[1 + end + 1..];
        }
    }
    let value = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// A signal computed from one scrape. Counters have no rate in a single scrape, so ratios
/// and percentiles are cumulative since the service started, and rates are unknown.
pub fn from_scrape(signal: Signal, samples: &[Sample]) -> Reading {
    let sum = |name: &str, keep: &dyn Fn(&Sample) -> bool| -> Option<f64> {
        let found: Vec<f64> = samples
            .iter()
            .filter(|s| s.name == name && keep(s))
            .map(|s| s.value)
            .collect();
        (!found.is_empty()).then(|| found.iter().sum())
    };
    let all = |_: &Sample| true;
    let missing = |name: &str| ProbeError::NoData(format!("no {name} in the scrape"));
    match signal {
        Signal::ErrorRate => {
            let total =
                sum("http_requests_total", &all).ok_or_else(|| missing("http_requests_total"))?;
            let errors = sum("http_requests_total", &|s| {
                s.label("status").is_some_and(|st| st.starts_with('5'))
            })
            .unwrap_or(0.0);
            ratio(errors, total)
        }
        Signal::GenerationSuccess => {
            let total = sum("odordiff_generation_requests_total", &all)
                .ok_or_else(|| missing("odordiff_generation_requests_total"))?;
            let ok = sum("odordiff_generation_success_total", &all)
                .ok_or_else(|| missing("odordiff_generation_success_total"))?;
            ratio(ok, total)
        }
        Signal::P95Latency => {
            let mut buckets: Vec<(f64, f64)> = Vec::new();
            for s in samples
                .iter()
                .filter(|s| s.name == "http_request_duration_seconds_bucket")
            {
                let Some(le) = s.label("le").and_then(|le| {
                    if le == "+Inf" {
                        Some(f64::INFINITY)
                    } else {
                        le.parse().ok()
                    }
                }) else {
                    continue;
                };
                match buckets.iter_mut().find(|(b, _)| *b == le) {
                    Some((_, count)) => *count += s.value,
                    None => buckets.push((le, s.value)),
                }
            }
            quantile(0.95, &mut buckets)
        }
        Signal::ActiveConnections => {
            sum("http_connections_active", &all).ok_or_else(|| missing("http_connections_active"))
        }
        Signal::DailyActiveUsers => samples
            .iter()
            .filter(|s| s.name == "odordiff_daily_active_users")
            .map(|s| s.value)
            .reduce(f64::max)
            .ok_or_else(|| missing("odordiff_daily_active_users")),
        Signal::RequestRate | Signal::GenerationRequests | Signal::VolumeUsage => {
            Err(ProbeError::Unsupported(
                "Prometheus (a single scrape has no rate or volume data)".into(),
            ))
        }
    }
}

fn ratio(part: f64, total: f64) -> Reading {
    if total > 0.0 {
        Ok(part / total)
    } else {
        Err(no_requests())
    }
}

fn no_requests() -> ProbeError {
    ProbeError::NoData("no requests recorded yet".into())
}

/// Prometheus' `histogram_quantile` on cumulative buckets `(le, count)`: linear
/// interpolation inside the bucket where the rank falls.
pub fn quantile(q: f64, buckets: &mut [(f64, f64)]) -> Reading {
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = match buckets.last() {
        Some((le, count)) if le.is_infinite() => *count,
        _ => {
            return Err(ProbeError::Protocol(
                "a histogram without a +Inf bucket".into(),
            ));
        }
    };
    if total <= 0.0 {
        return Err(no_requests());
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in buckets.iter() {
        if count >= rank {
            if le.is_infinite() {
                // Beyond the highest finite bucket: its bound is the best estimate.
                return Ok(prev.0);
            }
            let in_bucket = count - prev.1;
            let frac = if in_bucket > 0.0 {
                (rank - prev.1) / in_bucket
            } else {
                1.0
            };
            return Ok(prev.0 + (le - prev.0) * frac);
        }
        prev = (le, count);
    }
    Err(ProbeError::NoData("an empty histogram".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{method="GET",status="200"} 980
http_requests_total{method="POST",status="503"} 20
http_request_duration_seconds_bucket{le="0.5"} 800
http_request_duration_seconds_bucket{le="1"} 900
http_request_duration_seconds_bucket{le="2"} 1000
http_request_duration_seconds_bucket{le="+Inf"} 1000
http_connections_active 42
odordiff_daily_active_users{region="eu"} 1234
odordiff_generation_requests_total 200
odordiff_generation_success_total 190
weird_metric{path="a\"b\\c",x="y"} 1.5e3 1700000000000
broken{line 3
"#;

    #[test]
    fn text_format_parses_labels_escapes_and_timestamps() {
        let samples = parse_text(SCRAPE);
        assert_eq!(samples.len(), 11);
        let weird = samples.iter().find(|s| s.name == "weird_metric").unwrap();
        assert_eq!(
            weird.labels,
            [("path".into(), "a\"b\\c".into()), ("x".into(), "y".into())]
        );
        assert_eq!(weird.value, 1500.0);
    }

    #[test]
    fn signals_from_a_scrape() {
        let s = parse_text(SCRAPE);
        assert_eq!(from_scrape(Signal::ErrorRate, &s), Ok(0.02));
        assert_eq!(from_scrape(Signal::P95Latency, &s), Ok(1.5));
        assert_eq!(from_scrape(Signal::ActiveConnections, &s), Ok(42.0));
        assert_eq!(from_scrape(Signal::DailyActiveUsers, &s), Ok(1234.0));
        assert_eq!(from_scrape(Signal::GenerationSuccess, &s), Ok(0.95));
        assert!(matches!(
            from_scrape(Signal::RequestRate, &s),
            Err(ProbeError::Unsupported(why)) if why.starts_with("Prometheus")
        ));
        assert_eq!(
            from_scrape(Signal::ErrorRate, &[]),
            Err(ProbeError::NoData(
                "no http_requests_total in the scrape".into()
            ))
        );
    }

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        let mut b = vec![
            (0.5, 80.0),
            (1.0, 90.0),
            (2.0, 100.0),
            (f64::INFINITY, 100.0),
        ];
        assert_eq!(quantile(0.95, &mut b), Ok(1.5));
        let mut top = vec![(0.5, 10.0), (f64::INFINITY, 100.0)];
        assert_eq!(quantile(0.95, &mut top), Ok(0.5));
        assert!(quantile(0.95, &mut [(1.0, 5.0)]).is_err());
    }

    #[test]
    fn queries_select_the_job_and_the_namespace() {
        assert_eq!(
            query(Signal::ErrorRate, "odordiff-api", "odordiff", "5m"),
            "sum(rate(http_requests_total{job=\"odordiff-api\",status=~\"5..\"}[5m])) / sum(rate(http_requests_total{job=\"odordiff-api\"}[5m]))"
        );
        assert_eq!(
            query(Signal::VolumeUsage, "odordiff-api", "staging", "5m"),
            "max(kubelet_volume_stats_used_bytes{namespace=\"staging\"} / kubelet_volume_stats_capacity_bytes{namespace=\"staging\"})"
        );
    }
}
