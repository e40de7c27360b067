//! OdorDiff-2 stand-ins for odorbot's test cluster, one static binary for every image that
//! `scripts/images-build.sh` makes. Each image's config sets `ODORDIFF_ROLE`; a pod's env
//! can override anything below, so a test tells a workload how to misbehave.
//!
//! - `api`: HTTP on `ODORDIFF_PORT` (8000): `/health`, `/ready`, `/metrics` (the runbook's
//!   metric names), any other path answers like an API call. A background "traffic" tick
//!   (`ODORDIFF_TICK_MS`, 1000) logs one request line per tick in the format the runbook
//!   greps: `INFO request … status=200 duration=123 ms`, every fifth a `401`, and with
//!   `errors` an `ERROR` line with a slow duration.
//! - `worker`: the same server on 8001 and `worker job=… duration=… ms` lines.
//! - `smoke`: prints its checks and exits 0 (`ODORDIFF_SMOKE=pass`) or 1 (`fail`).
//! - `job`: a one-shot task (cache warming, log clean-up): prints a line and exits 0.
//! - `idle`: stays up doing nothing (the database and cache stand-ins).
//!
//! `ODORDIFF_FAIL` is a comma-separated list: `crash` (log an `ERROR` and exit
//! `ODORDIFF_EXIT_CODE`, 3, right after start), `unready` (`/ready` answers 503), `5xx`
//! (`/health` and API calls answer 503), `errors` (error lines in the traffic).
//! `GET /admin/ready` and `GET /admin/unready` flip readiness of a running process;
//! `GET /admin/exit` ends it with status 2 (the kubelet restarts the container).
//! SIGTERM and SIGINT end the process at once with status 0.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

unsafe extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    fn _exit(status: i32) -> !;
}

extern "C" fn on_signal(_: i32) {
    // _exit is async-signal-safe; nothing is left to flush (every line is flushed).
    unsafe { _exit(0) }
}

static READY: AtomicBool = AtomicBool::new(true);
static FAIL_5XX: AtomicBool = AtomicBool::new(false);
static ERRORS: AtomicBool = AtomicBool::new(false);
static REQ_OK: AtomicU64 = AtomicU64::new(0);
static REQ_5XX: AtomicU64 = AtomicU64::new(0);
static REQ_401: AtomicU64 = AtomicU64::new(0);
static DURATION_SUM_MS: AtomicU64 = AtomicU64::new(0);
/// Cumulative counts for the `le` bounds in [`BOUNDS_MS`], then `+Inf`.
static BUCKETS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];
const BOUNDS_MS: [u64; 5] = [100, 500, 1000, 2000, 5000];
static GENERATIONS: AtomicU64 = AtomicU64::new(0);
static GENERATIONS_OK: AtomicU64 = AtomicU64::new(0);
static ACTIVE: AtomicU64 = AtomicU64::new(0);

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        t / 3600,
        t / 60 % 60,
        t % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn log(level: &str, msg: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{} {level} {msg}", now());
    let _ = out.flush();
}

fn record(status: u16, duration_ms: u64) {
    match status {
        500..=599 => REQ_5XX.fetch_add(1, Ordering::Relaxed),
        401 | 403 => REQ_401.fetch_add(1, Ordering::Relaxed),
        _ => REQ_OK.fetch_add(1, Ordering::Relaxed),
    };
    DURATION_SUM_MS.fetch_add(duration_ms, Ordering::Relaxed);
    for (i, b) in BOUNDS_MS.iter().enumerate() {
        if duration_ms <= *b {
            BUCKETS[i].fetch_add(1, Ordering::Relaxed);
        }
    }
    BUCKETS[5].fetch_add(1, Ordering::Relaxed);
}

fn metrics() -> String {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut s = String::new();
    s.push_str("# TYPE http_requests_total counter\n");
    s.push_str(&format!(
        "http_requests_total{{method=\"GET\",status=\"200\"}} {}\n",
        get(&REQ_OK)
    ));
    s.push_str(&format!(
        "http_requests_total{{method=\"POST\",status=\"401\"}} {}\n",
        get(&REQ_401)
    ));
    s.push_str(&format!(
        "http_requests_total{{method=\"POST\",status=\"503\"}} {}\n",
        get(&REQ_5XX)
    ));
    s.push_str("# TYPE http_request_duration_seconds histogram\n");
    for (i, b) in BOUNDS_MS.iter().enumerate() {
        s.push_str(&format!(
            "http_request_duration_seconds_bucket{{le=\"{}\"}} {}\n",
            *b as f64 / 1000.0,
            get(&BUCKETS[i])
        ));
    }
    let count = get(&BUCKETS[5]);
    s.push_str(&format!(
        "http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\n"
    ));
    s.push_str(&format!(
        "http_request_duration_seconds_sum {}\nhttp_request_duration_seconds_count {count}\n",
        get(&DURATION_SUM_MS) as f64 / 1000.0
    ));
    s.push_str(&format!(
        "# TYPE http_connections_active gauge\nhttp_connections_active {}\n",
        get(&ACTIVE)
    ));
    s.push_str("# TYPE odordiff_daily_active_users gauge\nodordiff_daily_active_users 1234\n");
    s.push_str(&format!(
        "# TYPE odordiff_generation_requests_total counter\nodordiff_generation_requests_total {}\n",
        get(&GENERATIONS)
    ));
    s.push_str(&format!(
        "# TYPE odordiff_generation_success_total counter\nodordiff_generation_success_total {}\n",
        get(&GENERATIONS_OK)
    ));
    s
}

fn respond(stream: &mut TcpStream, status: u16, kind: &str, body: &str) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn handle(mut stream: TcpStream, version: &str) {
    let started = Instant::now();
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let method = parts.next().unwrap_or("GET").to_owned();
    let path = parts.next().unwrap_or("/").to_owned();
    let json = "application/json";
    let (status, kind, body) = match path.as_str() {
        "/health" if FAIL_5XX.load(Ordering::Relaxed) => {
            (503, json, "{\"status\":\"unhealthy\"}".to_owned())
        }
        "/health" => (
            200,
            json,
            format!("{{\"status\":\"healthy\",\"version\":\"{version}\"}}"),
        ),
        "/ready" if READY.load(Ordering::Relaxed) => (200, json, "{\"ready\":true}".to_owned()),
        "/ready" => (503, json, "{\"ready\":false}".to_owned()),
        "/metrics" => (200, "text/plain; version=0.0.4", metrics()),
        "/admin/exit" => {
            respond(&mut stream, 200, json, "{}");
            log("ERROR", "exiting on request (/admin/exit) with 2");
            std::process::exit(2);
        }
        "/admin/ready" | "/admin/unready" => {
            READY.store(path == "/admin/ready", Ordering::Relaxed);
            log("INFO", &format!("readiness set by {path}"));
            (200, json, "{}".to_owned())
        }
        _ if FAIL_5XX.load(Ordering::Relaxed) => {
            (503, json, "{\"error\":\"overloaded\"}".to_owned())
        }
        _ => (200, json, "{}".to_owned()),
    };
    respond(&mut stream, status, kind, &body);
    let ms = started.elapsed().as_millis() as u64;
    record(status, ms);
    let level = if status >= 500 { "ERROR" } else { "INFO" };
    log(
        level,
        &format!("request method={method} path={path} status={status} duration={ms} ms"),
    );
}

fn serve(port: u16, version: String) {
    let listener = TcpListener::bind(("0.0.0.0", port)).unwrap_or_else(|e| {
        log("ERROR", &format!("cannot listen on :{port}: {e}"));
        std::process::exit(2)
    });
    log("INFO", &format!("listening on :{port}"));
    for stream in listener.incoming().flatten() {
        let version = version.clone();
        std::thread::spawn(move || {
            ACTIVE.fetch_add(1, Ordering::Relaxed);
            handle(stream, &version);
            ACTIVE.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// The synthetic traffic: one log line (and metric sample) per tick.
fn traffic(role: &str, tick: Duration) {
    let mut n: u64 = 0;
    loop {
        std::thread::sleep(tick);
        n += 1;
        let errors = ERRORS.load(Ordering::Relaxed);
        if role == "worker" {
            if errors {
                log(
                    "ERROR",
                    &format!(
                        "worker job={n} kind=generation status=failed duration=5234 ms error=\"model timeout\""
                    ),
                );
            } else {
                let ms = 200 + n * 53 % 400;
                log(
                    "INFO",
                    &format!("worker job={n} kind=generation status=done duration={ms} ms"),
                );
            }
            continue;
        }
        GENERATIONS.fetch_add(1, Ordering::Relaxed);
        if errors {
            record(500, 5234);
            log(
                "ERROR",
                &format!(
                    "request id={n} method=POST path=/v1/generate status=500 duration=5234 ms error=\"model timeout\""
                ),
            );
        } else if n % 5 == 0 {
            record(401, 3);
            log(
                "WARN",
                &format!(
                    "request id={n} method=POST path=/v1/generate status=401 duration=3 ms error=\"invalid api key\""
                ),
            );
        } else {
            GENERATIONS_OK.fetch_add(1, Ordering::Relaxed);
            let ms = 80 + n * 37 % 200;
            record(200, ms);
            log(
                "INFO",
                &format!(
                    "request id={n} method=POST path=/v1/generate status=200 duration={ms} ms"
                ),
            );
        }
    }
}

fn main() {
    unsafe {
        signal(15, on_signal);
        signal(2, on_signal);
    }
    let role = env("ODORDIFF_ROLE")
        .or_else(|| std::env::args().nth(1).filter(|a| !a.starts_with('-')))
        .unwrap_or_else(|| "idle".into());
    let version = env("ODORDIFF_VERSION").unwrap_or_else(|| "dev".into());
    let fail = env("ODORDIFF_FAIL").unwrap_or_default();
    let fails = |what: &str| fail.split(',').any(|f| f.trim() == what);
    READY.store(!fails("unready"), Ordering::Relaxed);
    FAIL_5XX.store(fails("5xx"), Ordering::Relaxed);
    ERRORS.store(fails("errors"), Ordering::Relaxed);

    log("INFO", &format!("odordiff-{role} {version} starting"));
    if fails("crash") {
        let code = env("ODORDIFF_EXIT_CODE")
            .and_then(|c| c.parse().ok())
            .unwrap_or(3);
        log(
            "ERROR",
            &format!(
                "startup failed: cannot run database migrations (ODORDIFF_FAIL=crash); exiting with {code}"
            ),
        );
        std::process::exit(code);
    }
    match role.as_str() {
        "api" | "worker" => {
            let default_port = if role == "api" { 8000 } else { 8001 };
            let port = env("ODORDIFF_PORT")
                .and_then(|p| p.parse().ok())
                .unwrap_or(default_port);
            let tick = env("ODORDIFF_TICK_MS")
                .and_then(|t| t.parse().ok())
                .unwrap_or(1000);
            let r = role.clone();
            std::thread::spawn(move || traffic(&r, Duration::from_millis(tick)));
            serve(port, version);
        }
        "smoke" => {
            let pass = env("ODORDIFF_SMOKE").is_none_or(|s| s == "pass");
            log("INFO", "smoke: GET /health status=200 duration=12 ms ok");
            if pass {
                log(
                    "INFO",
                    "smoke: POST /v1/generate status=200 duration=340 ms ok",
                );
                log("INFO", "smoke: passed (2 checks)");
                std::process::exit(0);
            }
            log(
                "ERROR",
                "smoke: POST /v1/generate status=500 duration=5012 ms",
            );
            log("ERROR", "smoke: failed (1 of 2 checks)");
            std::process::exit(1);
        }
        "job" => {
            let args: Vec<String> = std::env::args().skip(1).collect();
            log("INFO", &format!("job: ran once with args {args:?}; done"));
        }
        _ => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
    }
}
