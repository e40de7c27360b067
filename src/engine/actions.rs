//! Carries out the runbook's typed actions: read-only ones at once, destructive ones as
//! a server-side dry run (their execution belongs to the two-person flow).
//!
//! The catalog's value types are converted to the cluster's through their text form, the
//! one both sides validate.

use std::str::FromStr;
use std::sync::Arc;

use crate::cluster::{Cluster, ClusterError};
use crate::domain::diagnostics;
use crate::domain::k8s::{self, ChangeReport, LogQuery, Mode};
use crate::domain::k8s_view as kv;
use crate::domain::signals::Signal;
use crate::domain::view::{Block, Message, escape};
use crate::engine::failure::Failure;
use crate::metrics::{KindLabel, Metrics};
use crate::probes::Probes;
use crate::runbook::Catalog;
use crate::runbook::actions::{Action, Bound, Change, Classified, LogSource, Query, one_line};
use crate::runbook::values::{ArgType, Backend, Backends};

/// Runs actions against the cluster and the probes.
pub struct Runner {
    /// The cluster, or why there is none (no credentials where odorbot runs).
    pub cluster: Result<Arc<Cluster>, String>,
    pub probes: Arc<Probes>,
    /// The runbook: the objects odorbot may act on.
    pub catalog: Arc<Catalog>,
    pub metrics: Metrics,
}

fn conv<T: FromStr>(value: &impl ArgType, what: &str) -> Result<T, Failure>
where
    T::Err: std::fmt::Display,
{
    let text = value.render();
    text.parse::<T>()
        .map_err(|e| Failure::Invalid(format!("{what} {text:?}: {e}")))
}

fn selector(s: &impl ArgType) -> Result<k8s::Selector, Failure> {
    let text = s.render();
    if text.is_empty() {
        return Ok(k8s::Selector::all());
    }
    text.parse().map_err(|e| {
        Failure::Invalid(format!(
            "selector {text:?} cannot be used here ({e}); use key=value pairs"
        ))
    })
}

impl Runner {
    /// The one place a failure becomes a reply: counted by kind, worded by [`Failure`].
    pub fn failed(&self, what: &str, failure: &Failure) -> Message {
        self.count(failure);
        // A failed call to the cluster is logged here, once, with what it was for.
        if let Failure::Cluster(e) = failure {
            tracing::warn!(action = what, error = %e, "Kubernetes call failed");
        }
        failure.reply(what)
    }

    /// Counts a failure that is reported elsewhere (an approval's outcome).
    pub fn count(&self, failure: &Failure) {
        self.metrics
            .failures
            .get_or_create(&KindLabel {
                kind: failure.kind(),
            })
            .inc();
    }

    fn cluster(&self) -> Result<&Cluster, Failure> {
        self.cluster
            .as_deref()
            .map_err(|why| Failure::NoCluster(why.clone()))
    }

    /// Answers one query within `probes.deadline`; every failure becomes a reply saying
    /// what could not be done. Each source has its own shorter bound; this one holds for
    /// the reply as a whole (a cert-manager list, say, is bounded by nothing shorter).
    pub async fn run(&self, query: &Query) -> Message {
        self.answer(query).await.unwrap_or_else(|failed| failed)
    }

    /// [`Runner::run`], telling the answer from the reply saying why there is none (a
    /// guided procedure pauses on the latter).
    ///
    /// # Errors
    /// The reply saying what could not be done.
    pub async fn answer(&self, query: &Query) -> Result<Message, Message> {
        let action = query.action();
        self.within_deadline(action.kind().summary(), self.try_run(action))
            .await
    }

    /// `work` bounded by `probes.deadline`; a failure or the deadline becomes the reply.
    async fn within_deadline<T>(
        &self,
        what: &str,
        work: impl std::future::Future<Output = Result<T, Failure>>,
    ) -> Result<T, Message> {
        let deadline = crate::probes::Limit::new(self.probes.deadline, "probes.deadline");
        tokio::time::timeout(deadline.after, work)
            .await
            .unwrap_or_else(|_| Err(Failure::Probe(deadline.expired())))
            .map_err(|why| self.failed(what, &why))
    }

    /// The reads `collect_evidence` keeps, within `probes.deadline` like any query.
    ///
    /// # Errors
    /// The reply saying what could not be read.
    pub async fn read_evidence(
        &self,
        sel: &crate::runbook::values::LabelSelector,
        since: std::time::Duration,
    ) -> Result<crate::cluster::EvidenceReads, Message> {
        let what = crate::runbook::actions::ActionKind::CollectEvidence.summary();
        let read = async {
            let sel = selector(sel)?;
            self.cluster()?
                .evidence(&sel, since)
                .await
                .map_err(Failure::Cluster)
        };
        self.within_deadline(what, read).await
    }

    /// What a change would do, as the server-side dry run shows it; nothing is requested.
    pub async fn preview(&self, change: &Change, requested_by: &str) -> Message {
        match self.card_dry_run(change).await {
            Ok(report) => kv::render_change(&report, requested_by, None),
            Err(why) => self.failed(change.action().kind().summary(), &why),
        }
    }

    async fn try_run(&self, action: &Action<Bound>) -> Result<Message, Failure> {
        let p = &self.probes;
        let map = |what: &str, e: ClusterError| self.failed(what, &Failure::Cluster(e));
        Ok(match action {
            Action::Pods { selector: s } => {
                let sel = selector(s)?;
                match self.cluster()?.pods(&sel).await {
                    Ok(pods) => kv::render_pods(&scope(&sel), &pods),
                    Err(e) => map("Pods", e),
                }
            }
            Action::DescribePods {
                selector: s,
                only_failing,
            } => {
                let sel = selector(s)?;
                match self.cluster()?.describe_pods(&sel, *only_failing).await {
                    Ok(d) => kv::render_descriptions(&scope(&sel), &d),
                    Err(e) => map("Describe", e),
                }
            }
            Action::Logs {
                source,
                tail,
                since,
                grep,
                previous,
            } => {
                let (source, scope_text) = match source {
                    LogSource::Selector(s) => {
                        let sel = selector(s)?;
                        let text = scope(&sel);
                        (k8s::LogSource::Selector(sel), text)
                    }
                    LogSource::Pod(pod) => (k8s::LogSource::Pod(pod.clone()), pod.to_string()),
                };
                let query = LogQuery {
                    source,
                    tail: tail.map(|t| t.get()),
                    since: *since,
                    grep: grep.clone(),
                    previous: previous.unwrap_or(false),
                };
                match self.cluster()?.logs(&query).await {
                    Ok(r) => kv::render_logs(&scope_text, &r),
                    Err(e) => map("Logs", e),
                }
            }
            Action::Endpoints { service } => match self.cluster()?.endpoints(service).await {
                Ok(e) => kv::render_endpoints(&e),
                Err(e) => map("Endpoints", e),
            },
            Action::Events { since } => match self.cluster()?.events(*since).await {
                Ok(ev) => kv::render_events(&ev),
                Err(e) => map("Events", e),
            },
            Action::RolloutStatus { deployment } | Action::RolloutHistory { deployment } => {
                let c = self.cluster()?;
                let (status, history) =
                    tokio::join!(c.rollout_status(deployment), c.rollout_history(deployment));
                match history {
                    Ok(h) => {
                        kv::render_rollout_history(deployment.as_str(), status.as_ref().ok(), &h)
                    }
                    Err(e) => map("Rollout history", e),
                }
            }
            Action::HelmHistory { release } => match self.cluster()?.helm_history(release).await {
                Ok(h) => kv::render_helm_history(release.as_str(), &h),
                Err(e) => map("Helm history", e),
            },
            Action::HpaStatus { hpa } => match self.cluster()?.hpa_status(hpa).await {
                Ok(h) => Message::text(format!(
                    "*HPA {}* → {}: {}–{} replicas, target CPU {}, now {} (CPU {}), desired {}",
                    escape(&h.name),
                    escape(&h.target),
                    h.min_replicas,
                    h.max_replicas,
                    h.target_cpu_percent
                        .map_or_else(|| "unset".into(), |t| format!("{t}%")),
                    h.current_replicas,
                    h.current_cpu_percent
                        .map_or_else(|| "unknown".into(), |t| format!("{t}%")),
                    h.desired_replicas
                )),
                Err(e) => map("HPA", e),
            },
            Action::PdbStatus => match self.cluster()?.pdb_status().await {
                Ok(pdbs) => Message::text(if pdbs.is_empty() {
                    "*Disruption budgets*: none".to_owned()
                } else {
                    pdbs.iter()
                        .map(|d| {
                            format!(
                                "• {} {}/{} healthy, {} disruptions allowed",
                                escape(&d.name),
                                d.current_healthy,
                                d.desired_healthy,
                                d.disruptions_allowed
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                }),
                Err(e) => map("Disruption budgets", e),
            },
            Action::ConfigmapKeys { configmap, grep } => match self
                .cluster()?
                .configmap_keys(configmap, grep.as_ref())
                .await
            {
                Ok(entries) => Message::text(format!(
                    "*ConfigMap {}*\n{}",
                    escape(configmap.as_str()),
                    entries
                        .iter()
                        .map(|e| format!("• {} = {}", escape(&e.key), escape(&e.value)))
                        .collect::<Vec<_>>()
                        .join("\n")
                )),
                Err(e) => map("ConfigMap", e),
            },
            Action::PvcStatus { pvc } => match self.cluster()?.pvc_status(pvc.as_ref()).await {
                Ok(pvcs) => Message::text(
                    pvcs.iter()
                        .map(|v| {
                            format!(
                                "• {} {} requested {}, capacity {}",
                                escape(&v.name),
                                escape(&v.phase),
                                escape(v.requested.as_deref().unwrap_or("?")),
                                escape(v.capacity.as_deref().unwrap_or("?"))
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
                Err(e) => map("Volumes", e),
            },
            Action::Certificates => match self.cluster()?.certificates().await {
                Ok(c) => Message::text(format!(
                    "*Certificates*\n{}",
                    kv::certificate_lines(&c).join("\n")
                )),
                Err(e) => map("Certificates", e),
            },
            Action::Backups => match self.cluster()?.backups().await {
                Ok(b) => kv::render_backups(&b),
                Err(e) => map("Backups", e),
            },
            Action::AccessReview => match self.cluster()?.access_review().await {
                Ok(a) => kv::render_access_review(&a),
                Err(e) => map("Access review", e),
            },
            Action::ResourceUsage { selector: s } => {
                let sel = s.as_ref().map(selector).transpose()?;
                match self.cluster()?.resource_usage(sel.as_ref()).await {
                    Ok(u) => kv::render_usage(&u),
                    Err(e) => map("Resource usage", e),
                }
            }
            Action::DbConnectivity => {
                let (via, result) = p.app_connectivity().await;
                diagnostics::render_connectivity(&result, via.as_deref(), &p.links)
            }
            Action::DbConnections { .. } => {
                let (counts, size) = tokio::join!(p.db_connections(), p.db_size());
                diagnostics::render_connections(&counts, &size, &p.links)
            }
            Action::DbSlowQueries { limit } => {
                let older = crate::domain::command::DEFAULT_LONG_RUNNING;
                let limit = limit.map_or(10, |l| i64::from(l.get()));
                let (running, top) =
                    tokio::join!(p.db_long_running(older), p.db_top_statements(limit));
                diagnostics::render_slow_queries(&running, older, &top, &p.links)
            }
            Action::DbSizes { limit } => {
                let limit = limit.map_or(diagnostics::DB_SIZES_TOP, |l| l.get() as usize);
                diagnostics::render_db_sizes(&p.db_sizes(limit).await, &p.links)
            }
            Action::PgbouncerPools => {
                diagnostics::render_pools(&p.pgbouncer_pools().await, &p.links)
            }
            Action::CacheStats => {
                diagnostics::render_cache(&p.cache_stats().await, None, &p.thresholds, &p.links)
            }
            Action::CacheKeys { pattern, limit } => {
                let limit = limit.map_or(20, |l| l.get() as usize);
                let pattern = pattern.render();
                let (stats, keys) = tokio::join!(p.cache_stats(), p.cache_keys(&pattern, limit));
                diagnostics::render_cache(&stats, Some(&keys), &p.thresholds, &p.links)
            }
            Action::HttpMetric { signal } => {
                let signal: Signal = signal.render().parse().map_err(Failure::Invalid)?;
                let (reading, source) = p.signal(signal).await;
                diagnostics::render_signal(signal, &reading, source, &p.thresholds, &p.links)
            }
            Action::ErrorBreakdown { top } => {
                let top = top.map_or(diagnostics::ERROR_BREAKDOWN_TOP, |t| t.get() as usize);
                let (label, window) = p.breakdown_by();
                diagnostics::render_error_breakdown(
                    &p.error_breakdown(top).await,
                    label,
                    window,
                    &p.thresholds,
                    &p.links,
                )
            }
            Action::HttpHealth { path } => {
                let checks = p.health().await;
                let want = path.render();
                // Unconfigured, the one row names the key to set.
                let lines: Vec<String> = checks
                    .iter()
                    .filter(|c| c.path == want || checks.len() == 1)
                    .map(diagnostics::HealthCheck::line)
                    .collect();
                Message::text(lines.join("\n"))
            }
            Action::TlsCertificate { .. } => {
                let (host, cert) = p.tls().await;
                diagnostics::render_tls(&host, &cert, &p.links)
            }
            Action::DiskUsage { pvc } => {
                let pvc = pvc.as_ref().map(|v| v.render());
                diagnostics::render_disk(&p.disk().await, pvc.as_deref(), &p.thresholds, &p.links)
            }
            Action::Notify { role } => {
                Message::text(format!("📣 Notify: {}", escape(&role.render())))
            }
            // Kept evidence belongs to an incident, which a guided run names.
            Action::CollectEvidence { .. } => {
                return Err(Failure::Invalid(
                    "evidence is kept under an incident: it is collected by a step of a guided procedure (`/odor run suspected-security-breach …`)".into(),
                ));
            }
            Action::Note { text } => Message::text(format!("📝 {}", escape(&text.render()))),
            // A `Query` is never a change (`Action::classify`); said, not assumed.
            change => {
                return Err(Failure::Invalid(format!(
                    "{} changes something; it needs an approval",
                    change.kind()
                )));
            }
        })
    }

    /// Binds into a change what its approval must hold and only the live system knows:
    /// the sessions a `db terminate-long` would terminate now (its approver sees those, and
    /// execution terminates no other), the secret a certificate renewal deletes.
    ///
    /// # Errors
    /// Why the live system could not be read.
    pub async fn bind_targets(&self, change: Change) -> Result<Change, Failure> {
        let live = self.live_targets(change.action()).await?;
        let bound = change
            .completed(|action| live.unwrap_or(action))
            .map_err(Failure::Invalid)?;
        // What was read from the live system is held to the runbook's objects too.
        self.catalog
            .check_objects(bound.action())
            .map_err(Failure::NotListed)?;
        Ok(bound)
    }

    /// The action with its live targets filled in, or `None` when it needs none.
    async fn live_targets(&self, action: &Action<Bound>) -> Result<Option<Action<Bound>>, Failure> {
        Ok(Some(match action.clone() {
            Action::DbTerminateLong {
                older_than,
                sessions: None,
            } => {
                let running = self.probes.db_long_running(older_than).await?;
                let sessions = Backends::new(
                    running
                        .iter()
                        .map(|s| Backend {
                            pid: s.pid,
                            started_micros: s.started_micros,
                        })
                        .collect(),
                )
                .map_err(Failure::Invalid)?;
                Action::DbTerminateLong {
                    older_than,
                    sessions: Some(sessions),
                }
            }
            // The secret is the certificate's own, as the cluster holds it now.
            Action::RenewCertificate {
                certificate,
                secret: None,
            } => {
                let secret = self.cluster()?.certificate_secret(&certificate).await?;
                Action::RenewCertificate {
                    certificate,
                    secret: Some(secret),
                }
            }
            _ => return Ok(None),
        }))
    }

    /// The server-side dry run of a destructive action (or, for database actions, what
    /// would be affected): the changes, which the check before executing compares.
    ///
    /// # Errors
    /// Why it could not be run.
    pub async fn dry_run(&self, change: &Change) -> Result<ChangeReport, Failure> {
        self.apply(change.action(), Mode::DryRun).await
    }

    /// [`Runner::dry_run`] with what the approver should know beside the changes, as the
    /// card shows it: the pre-deployment checks of a deploy, an autoscaler that would undo
    /// a scale. Read for the card only; the check before executing does not need them.
    ///
    /// # Errors
    /// Why the dry run could not be run; unreadable checks are a note instead.
    pub async fn card_dry_run(&self, change: &Change) -> Result<ChangeReport, Failure> {
        let mut report = self.dry_run(change).await?;
        let Ok(c) = self.cluster() else {
            return Ok(report);
        };
        let hpas = self.catalog.objects("horizontalpodautoscalers");
        match change.action() {
            Action::SetImage { deployment, .. } => match c.pre_deploy(deployment, hpas).await {
                Ok(checks) => report.notes.extend(checks.notes(deployment.as_str())),
                Err(e) => report.notes.push(format!(
                    "⚠️ the pre-deployment checks could not be read: {e}"
                )),
            },
            Action::Scale {
                deployment,
                replicas,
            } => match c.autoscalers_of(deployment, hpas).await {
                Ok(found) => report.notes.extend(k8s::autoscaler_notes(
                    &found,
                    deployment.as_str(),
                    replicas.get(),
                )),
                Err(e) => report
                    .notes
                    .push(format!("⚠️ the autoscalers could not be read: {e}")),
            },
            _ => {}
        }
        Ok(report)
    }

    /// Carries out a destructive action for real. Only the two-person flow calls this,
    /// for an approved request.
    ///
    /// # Errors
    /// Why it failed.
    pub async fn execute(&self, change: &Change) -> Result<ChangeReport, Failure> {
        self.apply(change.action(), Mode::Execute).await
    }

    async fn apply(&self, action: &Action<Bound>, mode: Mode) -> Result<ChangeReport, Failure> {
        let executing = !mode.is_dry_run();
        let err = Failure::Cluster;
        match action {
            Action::DbTerminateLong {
                older_than,
                sessions,
            } if executing => {
                let bound = sessions
                    .as_ref()
                    .ok_or(Failure::Unbound("no sessions were bound to this request"))?;
                let wanted: Vec<(i32, i64)> = bound
                    .get()
                    .iter()
                    .map(|b| (b.pid, b.started_micros))
                    .collect();
                let killed = self
                    .probes
                    .db_terminate_sessions(&wanted, *older_than)
                    .await?;
                let mut report = ChangeReport::new("db terminate-long", mode);
                for b in bound.get() {
                    report
                        .notes
                        .push(match killed.iter().find(|s| s.pid == b.pid) {
                            Some(s) => format!("terminated pid {} ({})", s.pid, s.user),
                            None => format!("pid {} had already ended; left alone", b.pid),
                        });
                }
                return Ok(report);
            }
            Action::DbVacuum if executing => {
                self.probes
                    .db_vacuum(std::time::Duration::from_secs(3600))
                    .await?;
                let mut report = ChangeReport::new("db vacuum", mode);
                report.notes.push("VACUUM ANALYZE completed".into());
                return Ok(report);
            }
            Action::DbTerminateLong {
                older_than,
                sessions,
            } => {
                let mut running = self.probes.db_long_running(*older_than).await?;
                // With sessions bound, only those are previewed: the rest would be left.
                if let Some(bound) = sessions {
                    running.retain(|s| {
                        bound
                            .get()
                            .iter()
                            .any(|b| b.pid == s.pid && b.started_micros == s.started_micros)
                    });
                }
                let mut report = ChangeReport::new("db terminate-long", mode);
                report.notes.extend(running.iter().map(|s| {
                    format!(
                        "would terminate pid {} ({}, {:.0}s): {}",
                        s.pid, s.user, s.running_secs, s.query
                    )
                }));
                if running.is_empty() {
                    report.notes.push("no statement runs that long now".into());
                }
                return Ok(report);
            }
            Action::DbVacuum => {
                let mut report = ChangeReport::new("db vacuum", mode);
                report
                    .notes
                    .push("would run VACUUM ANALYZE on the service's database".into());
                return Ok(report);
            }
            _ => {}
        }
        let c = self.cluster()?;
        match action {
            Action::RolloutRestart {
                deployment,
                restarted_at,
            } => match restarted_at {
                Some(at) => c.rollout_restart_at(deployment, &at.render(), mode).await,
                None => c.rollout_restart(deployment, mode).await,
            }
            .map_err(err),
            Action::Scale {
                deployment,
                replicas,
            } => c.scale(deployment, replicas.get(), mode).await.map_err(err),
            Action::RollbackDeployment {
                deployment,
                revision,
            } => c
                .rollback_deployment(deployment, revision.map(|r| u64::from(r.get())), mode)
                .await
                .map_err(err),
            Action::RollbackHelm { release, revision } => c
                .rollback_helm(release, revision.map(|r| u64::from(r.get())), mode)
                .await
                .map_err(err),
            Action::SetImage {
                deployment,
                container,
                tag,
            } => {
                // Checked again at execution: a stored request or a procedure step reaches
                // here as well as the verb.
                let target = self
                    .catalog
                    .service()
                    .deploy_target(deployment)
                    .filter(|t| &t.container == container)
                    .ok_or_else(|| {
                        Failure::NotListed(format!(
                            "{deployment}/{container} is not a container the runbook deploys ({})",
                            self.catalog.service().deployable()
                        ))
                    })?;
                c.set_image(deployment, container, tag, &target.repository, mode)
                    .await
                    .map_err(err)
            }
            Action::PatchHpa {
                hpa,
                min_replicas,
                max_replicas,
                target_cpu_percent,
            } => {
                let patch = crate::cluster::HpaPatch {
                    min_replicas: min_replicas.map(|v| v.get()),
                    max_replicas: max_replicas.map(|v| v.get()),
                    target_cpu_percent: target_cpu_percent.map(|v| v.get()),
                };
                c.patch_hpa(hpa, &patch, mode).await.map_err(err)
            }
            Action::SetResources {
                deployment,
                container,
                limits,
            } => {
                let memory = limits.memory.as_ref().map(|q| q.render());
                let cpu = limits.cpu.as_ref().map(|q| q.render());
                let pairs = memory
                    .as_deref()
                    .map(|m| ("memory", m))
                    .into_iter()
                    .chain(cpu.as_deref().map(|v| ("cpu", v)));
                let limits =
                    k8s::ResourceLimits::new(pairs).map_err(|e| Failure::Invalid(e.to_string()))?;
                c.set_resources(deployment, container, &limits, mode)
                    .await
                    .map_err(err)
            }
            Action::PatchConfigmap { configmap, data } => {
                let converted = data.iter().map(|(k, v)| (k.clone(), v.render())).collect();
                c.patch_configmap(configmap, &converted, mode)
                    .await
                    .map_err(err)
            }
            Action::JobFromCronjob { cronjob, job_name } => c
                .job_from_cronjob(cronjob, job_name, mode)
                .await
                .map_err(err),
            Action::LogsCleanup { cronjob, job_name }
            | Action::SmokeTests { cronjob, job_name } => {
                let job_name = job_name
                    .as_ref()
                    .ok_or(Failure::Unbound("the Job has no name"))?;
                c.job_from_cronjob_as(cronjob, job_name, action.kind().tag(), mode)
                    .await
                    .map_err(err)
            }
            Action::Annotate {
                deployment,
                key,
                value,
            } => {
                let key: k8s::QualifiedName = conv(key, "annotation")?;
                let value = value.as_ref().map(|v| v.render());
                c.annotate(deployment, &key, value.as_deref(), mode)
                    .await
                    .map_err(err)
            }
            Action::ExpandPvc { pvc, size } => c.expand_pvc(pvc, size, mode).await.map_err(err),
            Action::QuarantinePod {
                pod,
                quarantine_policy,
            } => c
                .quarantine_pod(pod, quarantine_policy, mode)
                .await
                .map_err(err),
            Action::UnquarantinePod { pod } => c.unquarantine_pod(pod, mode).await.map_err(err),
            Action::RotateSecret {
                deployment,
                container,
                env,
                key,
                secret_a,
                secret_b,
            } => {
                let rotation = crate::cluster::SecretRotation {
                    deployment: deployment.clone(),
                    container: container.clone(),
                    env: env.clone(),
                    key: key.clone(),
                    secret_a: secret_a.clone(),
                    secret_b: secret_b.clone(),
                };
                c.rotate_secret(&rotation, mode).await.map_err(err)
            }
            Action::RenewCertificate {
                certificate,
                secret,
            } => c
                .renew_certificate(
                    certificate,
                    secret
                        .as_ref()
                        .ok_or(Failure::Unbound("the certificate's secret was not bound"))?,
                    mode,
                )
                .await
                .map_err(err),
            Action::VeleroTestRestore { backup, restore } => c
                .velero_test_restore(
                    backup.as_ref(),
                    restore
                        .as_ref()
                        .ok_or(Failure::Unbound("the test restore has no name"))?,
                    mode,
                )
                .await
                .map_err(err),
            Action::VeleroRestoreCleanup { restore } => c
                .velero_restore_cleanup(restore.as_ref(), mode)
                .await
                .map_err(err),
            other => Err(Failure::Invalid(format!(
                "{} is not a destructive action",
                other.kind().summary()
            ))),
        }
    }
}

fn scope(sel: &k8s::Selector) -> String {
    let text = sel.to_string();
    if text.is_empty() {
        "all pods".into()
    } else {
        text
    }
}

impl Runner {
    /// The findings of every investigation step of `alert`, in the runbook's order.
    pub async fn diagnose(&self, alert: &crate::runbook::Alert, requested_by: &str) -> Message {
        let no_params = std::collections::BTreeMap::new();
        let runs = alert.investigation.iter().map(|step| async {
            match step.bind(&no_params).map(Action::classify) {
                Ok(Classified::Query(query)) => self.run(&query).await,
                // Investigation steps only read (the catalog compiler sees to it).
                Ok(Classified::Change(change)) => self.preview(&change, requested_by).await,
                Err(errors) => Message::text(format!("❔ needs {}", one_line(&errors))),
            }
        });
        let results = futures_util::future::join_all(runs).await;
        let title = format!("Diagnose — {}", alert.title);
        let mut blocks = vec![Block::Header(title.clone())];
        for (i, (step, result)) in alert.investigation.iter().zip(results).enumerate() {
            blocks.push(Block::Section(format!(
                "*{}. {}*",
                i + 1,
                escape(&step.title)
            )));
            blocks.extend(
                result
                    .blocks
                    .into_iter()
                    .filter(|b| !matches!(b, Block::Header(_))),
            );
        }
        Message {
            text: title,
            blocks,
        }
    }
}
