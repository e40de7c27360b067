//! The real odorbot binary, started against the fake Slack with test timings.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::fake_slack::{APP_TOKEN, BOT_TOKEN, FakeSlack};
use super::http;

pub struct Bot {
    child: Child,
    pub admin: SocketAddr,
    /// The store it was started on (`ODORBOT_STORE_URL`), empty when not given.
    pub store_url: String,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The binary under test: cargo's, or `ODORBOT_TEST_BIN` where a target directory shared
/// by several checkouts lets another checkout's build replace `target/debug/odorbot`
/// between this one's build and its tests.
pub fn binary() -> PathBuf {
    std::env::var_os("ODORBOT_TEST_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_odorbot")),
        PathBuf::from,
    )
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Timings shortened so reconnects and drains happen within a test's patience.
const TEST_CONFIG: &str = "\
slack:
  ping_interval: 1s
  reconnect_max_backoff: 1s
  send_deadline: 20s
engine:
  shutdown_grace: 10s
log:
  format: text
  filter: info,odorbot=debug
probes:
  # Loopback addresses where nothing listens: tests never reach the real service.
  health_url: http://127.0.0.1:9/
  tls_host: 127.0.0.1:9
  timeout: 1s
  deadline: 2s
";

/// `config` with `lines` (indented by two spaces) at the top of `section`, and that
/// section's own lines for the same keys left out, so YAML sees each key once.
fn with_lines(config: &str, section: &str, lines: &str) -> String {
    let key = |line: &str| line.trim_start().split(':').next().unwrap_or("").to_owned();
    let overridden: Vec<String> = lines.lines().map(key).collect();
    let header = format!("{section}:");
    let mut out = String::new();
    let mut inside = false;
    for line in config.lines() {
        if !line.starts_with(' ') {
            inside = line == header;
            out.push_str(line);
            out.push('\n');
            if inside {
                out.push_str(lines);
            }
        } else if !(inside
            && line.starts_with("  ")
            && !line.starts_with("   ")
            && overridden.contains(&key(line)))
        {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

impl Bot {
    /// Starts odorbot on a fresh SQLite store.
    pub async fn start(fake: &FakeSlack) -> Bot {
        Self::start_with(fake, None, &[]).await
    }

    /// Starts odorbot; `store_url` `None` means a SQLite file in a temporary directory.
    pub async fn start_with(
        fake: &FakeSlack,
        store_url: Option<&str>,
        env: &[(&str, &str)],
    ) -> Bot {
        Self::start_config(fake, store_url, env, "").await
    }

    /// Starts odorbot with more configuration (whole top-level sections, e.g. `incidents:`).
    pub async fn start_config(
        fake: &FakeSlack,
        store_url: Option<&str>,
        env: &[(&str, &str)],
        extra_yaml: &str,
    ) -> Bot {
        Self::start_tuned(fake, store_url, env, "", extra_yaml).await
    }

    /// As [`Bot::start_config`], with more `engine:` settings: `engine_yaml` is lines
    /// indented by two spaces (e.g. `"  workers: 1\n"`), added to the test section.
    pub async fn start_tuned(
        fake: &FakeSlack,
        store_url: Option<&str>,
        env: &[(&str, &str)],
        engine_yaml: &str,
        extra_yaml: &str,
    ) -> Bot {
        Self::start_sections(fake, store_url, env, &[("engine", engine_yaml)], extra_yaml).await
    }

    /// As [`Bot::start_config`], with more settings in the test config's own sections:
    /// each `(section, lines)` adds lines indented by two spaces to `section` (`slack`,
    /// `engine`, `log` or `probes`), replacing the test default of a key it sets.
    pub async fn start_sections(
        fake: &FakeSlack,
        store_url: Option<&str>,
        env: &[(&str, &str)],
        sections: &[(&str, &str)],
        extra_yaml: &str,
    ) -> Bot {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("odorbot.yaml");
        let base = sections
            .iter()
            .fold(TEST_CONFIG.to_owned(), |base, (section, lines)| {
                with_lines(&base, section, lines)
            });
        std::fs::write(&config, format!("{base}{extra_yaml}")).unwrap();
        let store = store_url
            .map(str::to_owned)
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("odorbot.db").display()));
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = dir.path().join("odorbot.log");
        let mut cmd = Command::new(binary());
        cmd.arg("run")
            .arg("--config")
            .arg(&config)
            .env_clear()
            .env("SLACK_APP_TOKEN", APP_TOKEN)
            .env("SLACK_BOT_TOKEN", BOT_TOKEN)
            .env("SLACK_API_URL", format!("{}/", fake.api_url()))
            .env("ODORBOT_STORE_URL", &store)
            .env("ODORBOT_HTTP_LISTEN", admin.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("odorbot binary starts");
        Bot {
            child,
            admin,
            store_url: store,
            log,
            _dir: dir,
        }
    }

    /// Starts the binary with exactly `args` and `env` and none of the test defaults, as
    /// a manifest would run it; `admin` is where its `http.listen` points, `dir` holds
    /// its files and the log.
    pub fn spawn_exact(
        args: &[String],
        env: &[(String, String)],
        admin: SocketAddr,
        dir: tempfile::TempDir,
    ) -> Bot {
        let log = dir.path().join(format!("odorbot-{}.log", admin.port()));
        let mut cmd = Command::new(binary());
        cmd.args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true);
        let child = cmd.spawn().expect("odorbot binary starts");
        let store_url = env
            .iter()
            .find(|(k, _)| k == "ODORBOT_STORE_URL")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        Bot {
            child,
            admin,
            store_url,
            log,
            _dir: dir,
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        http::get(&self.url(path)).await
    }

    /// Waits until `/readyz` answers with `status`.
    pub async fn wait_readyz(&self, status: u16, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if matches!(self.get("/readyz").await, Some((s, _)) if s == status) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`: no chance to finish anything.
    pub async fn kill9(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Waits for the process to end by itself; `None` when it still runs after `timeout`.
    pub async fn wait_exit(mut self, timeout: Duration) -> Option<(ExitStatus, String)> {
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()?;
        Some((status.unwrap(), self.logs()))
    }

    /// Arms or disarms failpoints at run time (debug builds; `name=fault;…`).
    pub async fn failpoints(&self, spec: &str) {
        let answer = http::put(&self.url("/debug/failpoints"), spec).await;
        assert!(
            matches!(answer, Some((200, _))),
            "failpoints {spec:?}: {answer:?}"
        );
    }

    /// SIGTERM, then waits for the exit.
    pub async fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().expect("still running");
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("odorbot exits within 30s of SIGTERM")
            .unwrap();
        (status, self.logs())
    }
}
