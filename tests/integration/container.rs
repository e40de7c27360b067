//! The container image `scripts/image.sh` builds, run with podman (runc, cgroupfs, the
//! host's loopback network) exactly as the Deployment runs it — the same arguments, the
//! base's configuration file and the Secret's keys as mounted files — against the fake
//! Slack: it connects, answers `/odor help`, serves `/readyz` and exits 0 on SIGTERM within
//! the pod's grace period. Its files, user, labels and size are checked too. Skips, saying
//! why, only where no container runtime can be installed.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::bot::free_port;
use crate::support::fake_slack::{APP_TOKEN, BOT_TOKEN, FakeSlack};
use crate::support::http;
use crate::support::manifests::{one, render, repo_path};

const IMAGE: &str = concat!("ghcr.io/odordiff/odorbot:", env!("CARGO_PKG_VERSION"));
const WAIT: Duration = Duration::from_secs(30);
/// The Deployment's terminationGracePeriodSeconds.
const GRACE: Duration = Duration::from_secs(30);
const MAX_IMAGE_BYTES: u64 = 30 * 1024 * 1024;

/// podman with the runtime settings that work on hosts like this one: runc (crun fails on
/// hybrid cgroups), cgroupfs, and rlimits within the hard limit.
fn podman(args: &[&str]) -> Output {
    let mut cmd = Command::new("podman");
    if std::path::Path::new("/usr/sbin/runc").exists() {
        cmd.args(["--runtime", "/usr/sbin/runc"]);
    }
    cmd.arg("--cgroup-manager=cgroupfs")
        .args(args)
        .output()
        .expect("podman runs")
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have_podman() -> bool {
    Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The image, built by scripts/image.sh when it is not there yet (which installs podman
/// from Debian's packages when it can). `None` when no container runtime can be had.
fn image() -> Option<Value> {
    let present = || have_podman() && podman(&["image", "exists", IMAGE]).status.success();
    if !present() {
        let built = Command::new(repo_path("scripts/image.sh"))
            .status()
            .is_ok_and(|s| s.success());
        if !have_podman() {
            eprintln!(
                "SKIPPED: no container runtime here and none could be installed \
                 (scripts/image.sh needs podman, buildah or docker; on Debian as root it \
                 installs podman)"
            );
            return None;
        }
        assert!(built && present(), "scripts/image.sh did not build {IMAGE}");
    }
    let inspect = ok(
        &podman(&["image", "inspect", IMAGE]),
        "podman image inspect",
    );
    let mut all: Vec<Value> = serde_json::from_str(&inspect).unwrap();
    Some(all.remove(0))
}

/// Removes the container however the test ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "0", &self.0]);
    }
}

fn write(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
    // The container runs as 10001, not as the owner of these files.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn the_image_holds_only_the_binary_its_libraries_and_certificates_as_a_numeric_user() {
    let Some(image) = image() else { return };
    let config = &image["Config"];
    assert_eq!(config["User"], "10001:10001");
    assert_eq!(config["Entrypoint"], serde_json::json!(["/odorbot"]));
    let labels = &config["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        labels["org.opencontainers.image.source"]
            .as_str()
            .is_some_and(|s| s.starts_with("https://"))
    );
    assert!(
        labels["org.opencontainers.image.revision"]
            .as_str()
            .is_some_and(|r| r.len() >= 40),
        "the git commit: {labels}"
    );
    let size = image["Size"].as_u64().unwrap();
    let layers = image["RootFS"]["Layers"].as_array().unwrap().len();
    eprintln!("image {IMAGE}: {size} bytes, {layers} layer(s), user 10001:10001");
    assert!(size < MAX_IMAGE_BYTES, "{size} bytes");

    // Every file in the image: no shell, no package manager, nothing but the binary, the
    // loader and libraries, the CA bundle and passwd/group.
    let name = format!("odorbot-files-{}", std::process::id());
    ok(
        &podman(&["create", "--name", &name, IMAGE]),
        "podman create",
    );
    let _c = Container(name.clone());
    let tar = tempfile::NamedTempFile::new().unwrap();
    ok(
        &podman(&["export", "-o", tar.path().to_str().unwrap(), &name]),
        "podman export",
    );
    let list = Command::new("tar")
        .arg("-tf")
        .arg(tar.path())
        .output()
        .unwrap();
    let files: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(|l| l.trim_start_matches("./").to_owned())
        .filter(|l| !l.is_empty() && !l.ends_with('/'))
        .collect();
    for f in &files {
        let allowed = f == "odorbot"
            || f == "etc/passwd"
            || f == "etc/group"
            || f == "etc/ssl/certs/ca-certificates.crt"
            || f.starts_with("lib/")
            || f.starts_with("lib64/")
            // podman's own mount points, created empty with the container.
            || ["etc/hosts", "etc/resolv.conf", "etc/hostname", "run/.containerenv"]
                .contains(&f.as_str());
        assert!(
            allowed,
            "unexpected file in the image: {f} (all: {files:?})"
        );
        assert!(!f.ends_with("/sh") && !f.contains("busybox"), "{f}");
    }
    assert!(files.iter().any(|f| f == "odorbot"));
    assert!(files.iter().any(|f| f.contains("libc.so")));
}

#[tokio::test]
async fn the_container_connects_answers_help_serves_readyz_and_stops_on_sigterm() {
    let Some(_image) = image() else { return };
    let fake = FakeSlack::start().await;

    // The Deployment's arguments, configuration file and Secret keys.
    let base = render("manifests");
    let deployment = one(&base, "Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let config = one(&base, "ConfigMap")["data"]["odorbot.yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    let etc = dir.path().join("etc");
    for d in [dir.path(), &secrets, &etc] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    write(&etc.join("odorbot.yaml"), &config);
    for (key, value) in [
        ("app-token", APP_TOKEN),
        ("bot-token", BOT_TOKEN),
        ("alerts-token", "container-test-alerts-token-0123456789"),
        // Loopback ports where nothing listens: the probes are not exercised here.
        ("postgres-url", "postgres://nobody@127.0.0.1:9/none"),
        (
            "pgbouncer-url",
            "postgres://pgbouncer@127.0.0.1:9/pgbouncer",
        ),
        ("app-database-url", "postgres://app@127.0.0.1:9/odordiff"),
        ("redis-url", "redis://127.0.0.1:9"),
    ] {
        write(&secrets.join(key), &format!("{value}\n"));
    }

    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let name = format!("odorbot-test-{}-{}", std::process::id(), admin.port());
    let mut run = vec![
        "run".to_owned(),
        "-d".into(),
        "--name".into(),
        name.clone(),
        // Loopback is the only network here: the fake Slack listens on the host's.
        "--network".into(),
        "host".into(),
        "--ulimit".into(),
        "nofile=1024:1024".into(),
        "--ulimit".into(),
        "nproc=1024:1024".into(),
        // As the pod: read-only root, /tmp writable, no capabilities.
        "--read-only".into(),
        "--tmpfs".into(),
        "/tmp".into(),
        "--cap-drop".into(),
        "ALL".into(),
        "--security-opt".into(),
        "no-new-privileges".into(),
        "-v".into(),
        format!("{}:/var/run/secrets/odorbot:ro", secrets.display()),
        "-v".into(),
        format!("{}:/etc/odorbot:ro", etc.display()),
        // The test's differences from the pod: the fake Slack, a free port on the host's
        // network, and the SQLite file on the tmpfs instead of the volume.
        "-e".into(),
        format!("SLACK_API_URL={}/", fake.api_url()),
        "-e".into(),
        format!("ODORBOT_HTTP_LISTEN={admin}"),
        "-e".into(),
        "ODORBOT_STORE_URL=sqlite:///tmp/odorbot.db".into(),
        "-e".into(),
        "ODORBOT_NAMESPACE=odordiff".into(),
        IMAGE.into(),
    ];
    run.extend(args);
    let run: Vec<&str> = run.iter().map(String::as_str).collect();
    ok(&podman(&run), "podman run");
    let _c = Container(name.clone());
    let logs = || {
        let out = podman(&["logs", &name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };

    assert!(
        fake.wait_connections(2, WAIT).await,
        "two socket connections\n{}",
        logs()
    );
    let url = format!("http://{admin}/readyz");
    let until = Instant::now() + WAIT;
    while !matches!(http::get(&url).await, Some((200, _))) {
        assert!(Instant::now() < until, "/readyz never 200\n{}", logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let d = fake.slash_command("U0ALICE", "C0OPS", "help").await;
    let reply = fake
        .reply_to(&d, WAIT)
        .await
        .expect("an answer to /odor help");
    let text = reply.body.to_string();
    assert!(
        text.contains("rollback") && text.contains("status"),
        "{text}"
    );
    let (status, metrics) = http::get(&format!("http://{admin}/metrics")).await.unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("odorbot_commands_total{verb=\"help\""),
        "{metrics}"
    );

    // The footprint the Deployment's resources are sized from.
    let pid = ok(
        &podman(&["inspect", "--format", "{{.State.Pid}}", &name]),
        "podman inspect",
    );
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())) {
        let mem: Vec<&str> = status
            .lines()
            .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
            .collect();
        eprintln!("odorbot in the container: {mem:?}");
    }

    let stopping = Instant::now();
    ok(&podman(&["kill", "--signal", "TERM", &name]), "podman kill");
    let waited = tokio::task::spawn_blocking({
        let name = name.clone();
        move || podman(&["wait", &name])
    });
    let exit = tokio::time::timeout(GRACE, waited)
        .await
        .unwrap_or_else(|_| panic!("still running {GRACE:?} after SIGTERM\n{}", logs()))
        .unwrap();
    let code = ok(&exit, "podman wait");
    assert_eq!(code.trim(), "0", "exit status\n{}", logs());
    eprintln!("stopped {:?} after SIGTERM", stopping.elapsed());
    assert!(logs().contains("stopped"), "{}", logs());
}
