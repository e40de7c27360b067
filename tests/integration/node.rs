//! The diagnostics and actions on real containers: the test cluster's node (kubelet and
//! containerd, started by `scripts/kube-up.sh`) runs OdorDiff-2's stand-in images
//! (`tests/images/standin.rs`), so crash loops, readiness, logs, rollouts and Jobs are the
//! kubelet's, not a test's imitation. Each test seeds its own namespace and they run in
//! parallel. Only `metrics.k8s.io`, which no metrics-server serves here, stays on the fake
//! (`cluster.rs`).

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use odorbot::cluster::Cluster;
use odorbot::domain::args::Filter;
use odorbot::domain::ids::K8sName;
use odorbot::domain::k8s::{ImageTag, LogQuery, LogSource, Mode, Selector};
use serde_json::json;

use crate::support::cluster_seed::{
    API_IMAGE, CRASHING_TAG, SMOKE_FAIL, SMOKE_PASS, Seeded, seed, wait_for,
};

fn n(s: &str) -> K8sName {
    s.parse().unwrap()
}

fn sel(s: &str) -> Selector {
    s.parse().unwrap()
}

fn pod_ip(p: &Pod) -> String {
    p.status.as_ref().unwrap().pod_ip.clone().unwrap()
}

fn query(source: LogSource, since: Option<u64>, grep: Option<&str>) -> LogQuery {
    LogQuery {
        previous: false,
        source,
        tail: None,
        since: since.map(Duration::from_secs),
        grep: grep.map(|g| Filter::new(g).unwrap()),
    }
}

/// All log lines of the selected pods, as the bot reads them.
async fn log_lines(bot: &Cluster, q: &LogQuery) -> Vec<String> {
    let report = bot.logs(q).await.unwrap();
    report.pods.into_iter().flat_map(|p| p.lines).collect()
}

/// Sets a short progress deadline, so a rollout that cannot finish is reported failed by
/// the Deployment controller within seconds instead of ten minutes.
async fn short_progress_deadline(s: &Seeded, name: &str) {
    s.api::<Deployment>()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"progressDeadlineSeconds": 10}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_bad_release_crash_loops_fails_its_rollout_and_a_rollback_brings_ready_pods_back() {
    let s = seed().await;
    let bot = s.bot().await;
    let api = n("odordiff-api");
    let before = s.rolled_out("odordiff-api", 90).await;
    short_progress_deadline(&s, "odordiff-api").await;

    let tag: ImageTag = CRASHING_TAG.parse().unwrap();
    bot.set_image(&api, &api, &tag, API_IMAGE, Mode::Execute)
        .await
        .unwrap();

    // The new pod starts, exits 3, is restarted and backs off: describe says why.
    let selector = sel("app=odordiff-api");
    let crashing = wait_for("a crash-looping pod", 90, || async {
        let failing = bot.describe_pods(&selector, true).await.ok()?;
        failing.into_iter().find(|d| {
            d.containers[0].restarts >= 1
                && d.containers[0]
                    .last_termination
                    .as_deref()
                    .is_some_and(|t| t.starts_with("Error (exit 3)"))
        })
    })
    .await;
    assert_eq!(
        crashing.containers[0].image,
        format!("{API_IMAGE}:{CRASHING_TAG}")
    );
    assert!(!crashing.pod.ready);
    // Its logs are the crashed run's: the real container's output.
    let lines = log_lines(
        &bot,
        &query(LogSource::Pod(n(&crashing.pod.name)), None, Some("ERROR")),
    )
    .await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("startup failed: cannot run database migrations")),
        "{lines:?}"
    );
    // --previous of a crash loop: the run before last is collected by the kubelet (it keeps
    // one dead container), which the reply says instead of passing its message off as a line.
    let mut previous = query(LogSource::Pod(n(&crashing.pod.name)), None, None);
    previous.previous = true;
    let report = bot.logs(&previous).await.unwrap();
    let p = &report.pods[0];
    assert!(
        p.lines.iter().any(|l| l.contains("ERROR startup failed"))
            || p.error
                .as_deref()
                .is_some_and(|e| e.starts_with("the kubelet no longer has the log")),
        "{report:?}"
    );
    // A container that never restarted has no previous run, and says so.
    let mut healthy = query(LogSource::Pod(n(&before[0].name_any())), None, None);
    healthy.previous = true;
    let report = bot.logs(&healthy).await.unwrap();
    assert_eq!(
        report.pods[0].error.as_deref(),
        Some("the container has not restarted: no previous run")
    );
    let pods = wait_for("CrashLoopBackOff in the pod list", 60, || async {
        let pods = bot.pods(&selector).await.ok()?;
        pods.iter()
            .any(|p| p.reason.as_deref() == Some("CrashLoopBackOff"))
            .then_some(pods)
    })
    .await;
    // The old pods keep serving meanwhile (maxUnavailable rounds down to 0 of 3).
    assert_eq!(pods.iter().filter(|p| p.ready).count(), 3, "{pods:?}");

    // The Deployment controller gives up: the rollout has failed, not just "not yet".
    let failed = wait_for("the rollout to be reported failed", 60, || async {
        let st = bot.rollout_status(&api).await.ok()?;
        st.failed.then_some(st)
    })
    .await;
    assert!(!failed.complete);
    assert!(
        failed.message.contains("exceeded its progress deadline"),
        "{failed:?}"
    );

    // Roll back: the previous revision's pods replace the crashing one and are Ready.
    bot.rollback_deployment(&api, None, Mode::Execute)
        .await
        .unwrap();
    let after = s.rolled_out("odordiff-api", 90).await;
    assert!(after.iter().all(|p| {
        p.spec.as_ref().unwrap().containers[0].image.as_deref()
            == Some(format!("{API_IMAGE}:1.5.0").as_str())
    }));
    let status = bot.rollout_status(&api).await.unwrap();
    assert!(status.complete && !status.failed, "{status:?}");
    assert_eq!((status.desired, status.ready), (3, 3));
    // The kept pods are the old ReplicaSet's: a rollback to a revision still running
    // replaces only what crashed.
    let kept = before
        .iter()
        .filter(|b| after.iter().any(|a| a.name_any() == b.name_any()))
        .count();
    assert_eq!(kept, 3, "the healthy pods were never replaced");
}

#[tokio::test]
async fn a_restart_really_replaces_the_containers() {
    let s = seed().await;
    let bot = s.bot().await;
    let before = s.rolled_out("odordiff-worker", 90).await;
    bot.rollout_restart(&n("odordiff-worker"), Mode::Execute)
        .await
        .unwrap();
    let after = wait_for("new worker pods", 90, || async {
        let pods = s.rolled_out("odordiff-worker", 90).await;
        pods.iter()
            .all(|p| before.iter().all(|b| b.name_any() != p.name_any()))
            .then_some(pods)
    })
    .await;
    assert_eq!(after.len(), 2);
    // And they run: the worker logs the jobs it processes.
    let lines = wait_for("the new workers' output", 30, || async {
        let lines = log_lines(
            &bot,
            &query(
                LogSource::Selector(sel("app=odordiff-worker")),
                None,
                Some(r"worker job=\d+ .*duration=\d+ ms"),
            ),
        )
        .await;
        (!lines.is_empty()).then_some(lines)
    })
    .await;
    assert!(lines.iter().all(|l| l.contains(" INFO ")), "{lines:?}");
}

#[tokio::test]
async fn logs_are_the_containers_output_filtered_by_grep_and_since() {
    let s = seed().await;
    let bot = s.bot().await;
    let pods = s.rolled_out("odordiff-api", 90).await;
    let pod = pods[0].name_any();
    let one = || LogSource::Pod(n(&pod));

    // The runbook's greps: authentication failures and durations, on real lines.
    let auth = wait_for("a 401 in the log", 30, || async {
        let lines = log_lines(&bot, &query(one(), None, Some("401|403"))).await;
        (!lines.is_empty()).then_some(lines)
    })
    .await;
    assert!(
        auth.iter()
            .all(|l| l.contains("WARN") && l.contains("status=401")),
        "{auth:?}"
    );
    let timed = log_lines(&bot, &query(one(), None, Some(r"duration=\d+ ms"))).await;
    assert!(timed.len() > auth.len(), "{timed:?}");
    let all = log_lines(&bot, &query(one(), None, None)).await;
    assert!(
        all[0].contains("INFO odordiff-api 1.5.0 starting"),
        "{all:?}"
    );
    assert!(
        log_lines(&bot, &query(one(), None, Some("ERROR")))
            .await
            .is_empty(),
        "a healthy release logs no errors"
    );

    // --since: once the container has run for a while, a short window leaves out its start.
    let started = wait_for("the container to have run for 6s", 30, || async {
        let p: Pod = s.api().get(&pod).await.ok()?;
        let t = p.status?.container_statuses?[0]
            .state
            .clone()?
            .running?
            .started_at?
            .0;
        (k8s_openapi::jiff::Timestamp::now().duration_since(t)
            > k8s_openapi::jiff::SignedDuration::from_secs(6))
        .then_some(t)
    })
    .await;
    let recent = log_lines(&bot, &query(one(), Some(2), None)).await;
    assert!(!recent.is_empty(), "requests every second");
    assert!(
        recent.iter().all(|l| !l.contains("starting")),
        "started at {started}, yet within the last 2s: {recent:?}"
    );

    // A release that serves errors: every pod's ERROR lines, with the slow durations the
    // runbook's high-latency grep looks for.
    let tag: ImageTag = "1.6.3-errors".parse().unwrap();
    let api = n("odordiff-api");
    bot.set_image(&api, &api, &tag, API_IMAGE, Mode::Execute)
        .await
        .unwrap();
    s.rolled_out("odordiff-api", 90).await;
    let errors = wait_for("ERROR lines from the new pods", 30, || async {
        let lines = log_lines(
            &bot,
            &query(
                LogSource::Selector(sel("app=odordiff-api")),
                Some(60),
                Some("ERROR"),
            ),
        )
        .await;
        (lines.len() >= 3).then_some(lines)
    })
    .await;
    let slow = Filter::new("duration.*[5-9][0-9][0-9][0-9]").unwrap();
    assert!(
        errors
            .iter()
            .all(|l| slow.is_match(l) && l.contains("status=500")),
        "{errors:?}"
    );
}

#[tokio::test]
async fn endpoints_follow_readiness_and_a_restarted_container_keeps_its_previous_log() {
    let s = seed().await;
    let bot = s.bot().await;
    let pods = s.rolled_out("odordiff-api", 90).await;
    let service = n("odordiff-api");
    let mut all: Vec<String> = pods.iter().map(|p| format!("{}:8000", pod_ip(p))).collect();
    all.sort();
    let ep = wait_for("three ready endpoints", 30, || async {
        let ep = bot.endpoints(&service).await.ok()?;
        (ep.ready.len() == 3).then_some(ep)
    })
    .await;
    let mut ready = ep.ready.clone();
    ready.sort();
    assert_eq!(ready, all);
    assert!(ep.not_ready.is_empty());

    // One pod's /ready starts failing (pod IPs are reachable from the host): the
    // kubelet's probe marks it not ready and the endpoints controller moves it.
    let victim = format!("{}:8000", pod_ip(&pods[0]));
    let flip = |to: &'static str| {
        let url = format!("http://{}:8000/admin/{to}", pod_ip(&pods[0]));
        async move {
            let got = crate::support::http::get(&url).await;
            assert_eq!(got.map(|g| g.0), Some(200), "{url}");
        }
    };
    flip("unready").await;
    let ep = wait_for("the pod to leave the ready endpoints", 30, || async {
        let ep = bot.endpoints(&service).await.ok()?;
        (ep.not_ready == [victim.clone()]).then_some(ep)
    })
    .await;
    assert_eq!(ep.ready.len(), 2);
    assert!(!ep.ready.contains(&victim));
    let infos = bot.pods(&sel("app=odordiff-api")).await.unwrap();
    let p = infos.iter().find(|p| p.name == pods[0].name_any()).unwrap();
    assert!(!p.ready && p.phase == "Running", "{p:?}");
    let failing = bot
        .describe_pods(&sel("app=odordiff-api"), true)
        .await
        .unwrap();
    assert_eq!(failing.len(), 1);
    assert!(
        failing[0]
            .conditions
            .iter()
            .any(|c| c.starts_with("Ready=False")),
        "{:?}",
        failing[0].conditions
    );

    flip("ready").await;
    wait_for("the pod to be ready again", 30, || async {
        let ep = bot.endpoints(&service).await.ok()?;
        (ep.ready.len() == 3 && ep.not_ready.is_empty()).then_some(())
    })
    .await;

    // The process exits: the kubelet restarts the container in place, and --previous
    // reads what the dead run logged; describe shows how it ended.
    flip("exit").await;
    let name = pods[0].name_any();
    let restarted = wait_for("the container restarted and Ready", 60, || async {
        let d = bot
            .describe_pods(&sel("app=odordiff-api"), false)
            .await
            .ok()?;
        d.into_iter()
            .find(|d| d.pod.name == name && d.pod.ready && d.containers[0].restarts == 1)
    })
    .await;
    assert_eq!(
        restarted.containers[0]
            .last_termination
            .as_deref()
            .and_then(|t| t.split(" at ").next()),
        Some("Error (exit 2)")
    );
    let mut previous = query(LogSource::Pod(n(&name)), None, Some("ERROR"));
    previous.previous = true;
    let lines = log_lines(&bot, &previous).await;
    assert!(
        lines.iter().any(|l| l.contains("exiting on request")),
        "{lines:?}"
    );
    let current = log_lines(&bot, &query(LogSource::Pod(n(&name)), None, None)).await;
    assert!(
        current.iter().all(|l| !l.contains("exiting on request")),
        "{current:?}"
    );
}

#[tokio::test]
async fn smoke_test_and_cache_warming_jobs_really_run() {
    let s = seed().await;
    let bot = s.bot().await;
    let jobs: Api<Job> = s.api();
    // The smoke test as a Job (the runbook's "Run smoke tests"), passing and failing.
    for (name, image) in [("smoke-pass", SMOKE_PASS), ("smoke-fail", SMOKE_FAIL)] {
        let job: Job = serde_json::from_value(json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": {"app": "smoke-tests"}},
                "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "smoke", "image": image}]}}}
        }))
        .unwrap();
        jobs.create(&PostParams::default(), &job).await.unwrap();
    }
    // The bot's own Job from a CronJob (cache warming) runs to completion as well.
    bot.job_from_cronjob(
        &n("cdn-cache-warming"),
        &n("cache-warming-now"),
        Mode::Execute,
    )
    .await
    .unwrap();
    let outcome = |name: &'static str| {
        let jobs = jobs.clone();
        async move {
            wait_for(&format!("Job {name} to finish"), 90, || async {
                let st = jobs.get(name).await.ok()?.status?;
                match (st.succeeded.unwrap_or(0), st.failed.unwrap_or(0)) {
                    (0, 0) => None,
                    (ok, _) => Some(ok > 0),
                }
            })
            .await
        }
    };
    assert!(outcome("smoke-pass").await);
    assert!(!outcome("smoke-fail").await);
    assert!(outcome("cache-warming-now").await);

    // What the bot shows of them: the pods' phases and the smoke test's own words.
    let passed = bot.pods(&sel("job-name=smoke-pass")).await.unwrap();
    assert_eq!(passed[0].phase, "Succeeded");
    let failed = bot.pods(&sel("job-name=smoke-fail")).await.unwrap();
    assert_eq!(failed[0].phase, "Failed");
    let described = bot
        .describe_pods(&sel("job-name=smoke-fail"), true)
        .await
        .unwrap();
    assert_eq!(
        described[0].containers[0].state.split(" at ").next(),
        Some("terminated: Error (exit 1)")
    );
    let lines = log_lines(
        &bot,
        &query(
            LogSource::Selector(sel("job-name=smoke-fail")),
            None,
            Some("ERROR"),
        ),
    )
    .await;
    assert!(
        lines.iter().any(|l| l.contains("smoke: failed")),
        "{lines:?}"
    );
    let ok = log_lines(
        &bot,
        &query(LogSource::Selector(sel("job-name=smoke-pass")), None, None),
    )
    .await;
    assert!(ok.iter().any(|l| l.contains("smoke: passed")), "{ok:?}");
    let pods: Api<Pod> = s.api();
    let warmed = pods
        .list(&ListParams::default().labels("job-name=cache-warming-now"))
        .await
        .unwrap();
    assert_eq!(warmed.items.len(), 1);
}
