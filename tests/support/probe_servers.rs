//! Servers for the probe tests: the dedicated PostgreSQL instance and PgBouncer started by
//! `scripts/probe-servers-up.sh`, a Prometheus started per test, a test exporter serving
//! the runbook's metric families with known values, a TLS server with a certificate of
//! known expiry, and a "black hole" that accepts connections and never answers.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

use super::bot::free_port;

/// The probe tests' PostgreSQL instance (pg_stat_statements preloaded).
pub fn pg_admin_url() -> String {
    std::env::var("ODORBOT_TEST_PROBE_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".into())
}

/// PgBouncer's admin console in front of that instance.
pub fn pgbouncer_admin_url() -> String {
    std::env::var("ODORBOT_TEST_PGBOUNCER")
        .unwrap_or_else(|_| "postgres://pgbouncer@127.0.0.1:56432/pgbouncer".into())
}

/// The API's route to its database in the probe tests: through that PgBouncer, as the
/// `app` role (PgBouncer logs in to PostgreSQL with the password in its auth file).
pub fn pgbouncer_app_url() -> String {
    let admin = pgbouncer_admin_url();
    let (base, _) = admin.rsplit_once('/').expect("a database in the URL");
    format!("{}/postgres", base.replacen("pgbouncer@", "app@", 1))
}

/// Serves `router` on a loopback port until the returned handle is dropped.
pub async fn serve(router: Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (addr, task)
}

/// OdorDiff-2's metric families. Every scrape adds the same amounts, so ratios and
/// quantiles are exact: 2% of requests are 5xx, p95 is 1.5 s, 90% of generations succeed.
/// By endpoint: `/generate` has 3% 5xx of half the requests, `/search` 1/60 of 30%,
/// `/health` none of the rest. The kubelet's series for namespace `odordiff`: PostgreSQL's
/// claim 95 GiB of 100 GiB, Redis' 1 of 10, container logs 6 MiB for `odordiff-api-1` (two
/// containers) and 2 MiB for `postgres-0`; a fuller volume in another namespace.
pub async fn exporter() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * MIB;
    let scrapes = Arc::new(AtomicU64::new(0));
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let n = scrapes.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                format!(
                    "# TYPE http_requests_total counter\n\
                     http_requests_total{{endpoint=\"/generate\",method=\"POST\",status=\"200\"}} {gen_ok}\n\
                     http_requests_total{{endpoint=\"/generate\",method=\"POST\",status=\"503\"}} {gen_err}\n\
                     http_requests_total{{endpoint=\"/search\",method=\"GET\",status=\"200\"}} {search_ok}\n\
                     http_requests_total{{endpoint=\"/search\",method=\"GET\",status=\"500\"}} {search_err}\n\
                     http_requests_total{{endpoint=\"/health\",method=\"GET\",status=\"200\"}} {health}\n\
                     # TYPE http_request_duration_seconds histogram\n\
                     http_request_duration_seconds_bucket{{le=\"0.5\"}} {b05}\n\
                     http_request_duration_seconds_bucket{{le=\"1\"}} {b1}\n\
                     http_request_duration_seconds_bucket{{le=\"2\"}} {b2}\n\
                     http_request_duration_seconds_bucket{{le=\"+Inf\"}} {b2}\n\
                     http_request_duration_seconds_sum {sum}\n\
                     http_request_duration_seconds_count {b2}\n\
                     # TYPE http_connections_active gauge\n\
                     http_connections_active 42\n\
                     # TYPE odordiff_daily_active_users gauge\n\
                     odordiff_daily_active_users 1234\n\
                     # TYPE odordiff_generation_requests_total counter\n\
                     odordiff_generation_requests_total {gen}\n\
                     # TYPE odordiff_generation_success_total counter\n\
                     odordiff_generation_success_total {genok}\n\
                     # TYPE kubelet_volume_stats_used_bytes gauge\n\
                     kubelet_volume_stats_used_bytes{{namespace=\"odordiff\",persistentvolumeclaim=\"postgres-data-postgres-0\"}} {pg_used}\n\
                     kubelet_volume_stats_used_bytes{{namespace=\"odordiff\",persistentvolumeclaim=\"redis-data\"}} {gib}\n\
                     kubelet_volume_stats_used_bytes{{namespace=\"elsewhere\",persistentvolumeclaim=\"full\"}} 99\n\
                     # TYPE kubelet_volume_stats_capacity_bytes gauge\n\
                     kubelet_volume_stats_capacity_bytes{{namespace=\"odordiff\",persistentvolumeclaim=\"postgres-data-postgres-0\"}} {pg_cap}\n\
                     kubelet_volume_stats_capacity_bytes{{namespace=\"odordiff\",persistentvolumeclaim=\"redis-data\"}} {redis_cap}\n\
                     kubelet_volume_stats_capacity_bytes{{namespace=\"elsewhere\",persistentvolumeclaim=\"full\"}} 100\n\
                     # TYPE kubelet_container_log_filesystem_used_bytes gauge\n\
                     kubelet_container_log_filesystem_used_bytes{{namespace=\"odordiff\",pod=\"odordiff-api-1\",container=\"api\"}} {mib5}\n\
                     kubelet_container_log_filesystem_used_bytes{{namespace=\"odordiff\",pod=\"odordiff-api-1\",container=\"sidecar\"}} {mib1}\n\
                     kubelet_container_log_filesystem_used_bytes{{namespace=\"odordiff\",pod=\"postgres-0\",container=\"postgres\"}} {mib2}\n",
                    gen_ok = 48.5 * n as f64,
                    gen_err = 1.5 * n as f64,
                    search_ok = 29.5 * n as f64,
                    search_err = 0.5 * n as f64,
                    health = 20 * n,
                    b05 = 80 * n,
                    b1 = 90 * n,
                    b2 = 100 * n,
                    sum = 60 * n,
                    gen = 50 * n,
                    genok = 45 * n,
                    gib = GIB,
                    pg_used = 95 * GIB,
                    pg_cap = 100 * GIB,
                    redis_cap = 10 * GIB,
                    mib1 = MIB,
                    mib2 = 2 * MIB,
                    mib5 = 5 * MIB,
                )
            }
        }),
    );
    serve(router).await
}

/// A Prometheus scraping `target` every second as job `odordiff-api`.
pub struct Prometheus {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub async fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: odordiff-api\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("Debian's prometheus is installed (scripts/probe-servers-up.sh)");
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}/"),
            _dir: dir,
        }
    }

    /// Waits until Prometheus holds at least `samples` scrapes of the target, so `rate()`
    /// has data.
    pub async fn wait_for_samples(&self, samples: u32, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        let query = "count_over_time(up{job=\"odordiff-api\"}[5m])";
        let url = format!("{}api/v1/query?query={}", self.url, urlencode(query));
        while Instant::now() < until {
            if let Some((200, body)) = super::http::get(&url).await
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
                && let Some(n) = v["data"]["result"][0]["value"][1].as_str()
                && n.parse::<u32>().unwrap_or(0) >= samples
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        false
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Accepts TCP connections and never answers: the "slow source".
pub async fn black_hole() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (addr, task)
}

/// A loopback address where nothing listens: the "down source".
pub fn closed_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A TLS server on loopback whose certificate (CN `odorbot-test`, names `localhost` and
/// `127.0.0.1`) expires in `days` days. Returns its address.
pub async fn tls_server(dir: &Path, days: u32) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    let key_pem = dir.join("key.pem");
    let cert_der = dir.join("cert.der");
    let key_der = dir.join("key.der");
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=odorbot-test",
        ])
        .args([
            "-days",
            &days.to_string(),
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key_pem)
        .args(["-outform", "DER", "-out"])
        .arg(&cert_der)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
        && std::process::Command::new("openssl")
            .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
            .arg(&key_pem)
            .arg("-out")
            .arg(&key_der)
            .status()
            .unwrap()
            .success();
    assert!(ok, "openssl made the test certificate");
    let cert = CertificateDer::from(std::fs::read(&cert_der).unwrap());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(std::fs::read(&key_der).unwrap()));
    let config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(socket).await {
                    use tokio::io::AsyncWriteExt;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    (addr, task)
}

/// Sends Redis commands one at a time and returns the first line of each reply, for
/// setting up test data (simple, integer and bulk replies only).
pub async fn redis_cmds(addr: &str, cmds: &[&[&str]]) -> Vec<String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("Redis is running");
    let mut stream = BufReader::new(stream);
    let mut replies = Vec::new();
    for cmd in cmds {
        let mut frame = format!("*{}\r\n", cmd.len());
        for arg in *cmd {
            frame.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.get_mut().write_all(frame.as_bytes()).await.unwrap();
        let mut line = String::new();
        stream.read_line(&mut line).await.unwrap();
        if line.starts_with('$') && !line.starts_with("$-1") {
            let mut value = String::new();
            stream.read_line(&mut value).await.unwrap();
        }
        replies.push(line.trim_end().to_owned());
    }
    replies
}

/// The Redis with TLS and ACL users that scripts/probe-servers-up.sh starts: its port and
/// the CA that signed its certificate.
pub fn redis_tls() -> (u16, std::path::PathBuf) {
    let port = std::env::var("ODORBOT_PROBE_REDIS_TLS_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(56379);
    let dir = std::env::var("ODORBOT_PROBES_DIR").unwrap_or_else(|_| "/tmp/odorbot-probes".into());
    (port, std::path::Path::new(&dir).join("redis-tls/ca.crt"))
}
