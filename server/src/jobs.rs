//! Background jobs as named workers (in the manner of garage's `background::Worker`).
//!
//! Each job (the janitor, and the durability jobs of [`crate::durability`]) is a pass run every
//! interval on the replica that holds the job's lease ([`crate::leases`]). The [`Runner`] takes the
//! lease, runs the pass, and records in the [`Registry`] what the job is doing, how many runs
//! failed and why; a job may also report its own figures ([`Registry::report`], the repairer's
//! queue). `GET /api/v1/jobs` shows the registry, so an operator sees a job that keeps failing
//! without reading logs.
//!
//! The registry knows no job by type: jobs depend on it, not the other way round.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use disktro_core::api::{JobState, JobStatus};
use tokio_util::sync::CancellationToken;

use crate::context::unix_now;
use crate::db::Db;
use crate::leases;
use crate::store::Conflict;

/// Runs of one pass in all when it keeps failing on serialization conflicts.
pub const PASS_ATTEMPTS: u32 = 3;

/// Every job this replica runs, by name.
#[derive(Debug, Default)]
pub struct Registry {
    jobs: Mutex<BTreeMap<&'static str, JobStatus>>,
}

impl Registry {
    /// Every job, by name.
    pub fn list(&self) -> Vec<JobStatus> {
        self.lock().values().cloned().collect()
    }

    /// One job, if this replica runs it.
    pub fn get(&self, name: &str) -> Option<JobStatus> {
        self.lock().get(name).cloned()
    }

    /// Set the job's own figures (shown as its `progress`).
    pub fn report(&self, name: &'static str, progress: &impl serde::Serialize) {
        let value = serde_json::to_value(progress).unwrap_or_default();
        self.update(name, |s| s.progress = value);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, JobStatus>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, name: &'static str, every: Duration) {
        self.lock().entry(name).or_insert_with(|| JobStatus {
            name: name.to_owned(),
            state: JobState::Idle,
            interval_secs: every.as_secs(),
            runs: 0,
            failures: 0,
            consecutive_failures: 0,
            last_started: None,
            last_finished: None,
            last_error: None,
            progress: serde_json::Value::Null,
        });
    }

    fn update(&self, name: &'static str, f: impl FnOnce(&mut JobStatus)) {
        if let Some(status) = self.lock().get_mut(name) {
            f(status);
        }
    }

    fn started(&self, name: &'static str, now: i64) {
        self.update(name, |s| {
            s.state = JobState::Running;
            s.last_started = Some(now);
        });
    }

    fn finished(&self, name: &'static str, error: Option<String>, now: i64) {
        self.update(name, |s| {
            s.state = JobState::Idle;
            s.runs += 1;
            s.last_finished = Some(now);
            match error {
                Some(e) => {
                    s.failures += 1;
                    s.consecutive_failures += 1;
                    s.last_error = Some(e);
                }
                None => s.consecutive_failures = 0,
            }
        });
    }

    fn set_state(&self, name: &'static str, state: JobState) {
        self.update(name, |s| s.state = state);
    }
}

/// Starts jobs for one replica: its lease holder name, the database the leases live in, the
/// registry it reports to, and the shutdown signal that stops every job.
#[derive(Debug, Clone)]
pub struct Runner {
    pub registry: Arc<Registry>,
    pub db: Db,
    pub holder: String,
    pub shutdown: CancellationToken,
}

impl Runner {
    /// Run `pass` every `every` while this replica holds the lease `name` (its TTL is three
    /// periods, so a dead holder is replaced after three missed passes). A pass that failed on a
    /// serialization conflict ([`Conflict`]) runs again at once, up to [`PASS_ATTEMPTS`] times
    /// in all; any other failure is logged and counted, and the next pass runs on schedule. The
    /// lease is released on shutdown.
    pub fn spawn<F, Fut, E>(&self, name: &'static str, every: Duration, pass: F) -> tokio::task::JoinHandle<()>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + Conflict,
    {
        let Self {
            registry,
            db,
            holder,
            shutdown,
        } = self.clone();
        let every = every.max(Duration::from_millis(100));
        let ttl = (every * 3).max(Duration::from_secs(3));
        registry.add(name, every);
        tokio::spawn(async move {
            loop {
                match leases::try_acquire(&db, name, &holder, ttl, unix_now()).await {
                    Ok(true) => {
                        registry.started(name, unix_now());
                        let mut attempt = 1;
                        let result = loop {
                            let result = tokio::select! {
                                () = shutdown.cancelled() => None,
                                result = pass() => Some(result),
                            };
                            match result {
                                Some(Err(e)) if e.is_conflict() && attempt < PASS_ATTEMPTS => {
                                    tracing::info!(job = name, attempt, "serialization conflict; the pass runs again");
                                    attempt += 1;
                                }
                                other => break other,
                            }
                        };
                        // Shut down meanwhile.
                        let Some(result) = result else { break };
                        let error = result.err().map(|e| e.to_string());
                        if let Some(e) = &error {
                            tracing::warn!(job = name, error = %e, "background pass failed");
                        }
                        registry.finished(name, error, unix_now());
                    }
                    Ok(false) => {
                        tracing::debug!(job = name, "another replica holds the lease");
                        registry.set_state(name, JobState::Standby);
                    }
                    Err(e) => {
                        tracing::warn!(job = name, error = %e, "lease");
                        registry.finished(name, Some(format!("taking the lease: {e}")), unix_now());
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(every) => {}
                }
            }
            registry.set_state(name, JobState::Stopped);
            if let Err(e) = leases::release(&db, name, &holder).await {
                tracing::warn!(job = name, error = %e, "releasing the lease");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn runner(dir: &std::path::Path) -> Runner {
        Runner {
            registry: Arc::default(),
            db: Db::open(&crate::db::sqlite_url(dir)).await.unwrap(),
            holder: "replica-test".to_owned(),
            shutdown: CancellationToken::new(),
        }
    }

    async fn wait_for(registry: &Registry, name: &str, runs: u64) -> JobStatus {
        for _ in 0..200 {
            if let Some(s) = registry.get(name).filter(|s| s.runs >= runs) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{name} did not reach {runs} runs: {:?}", registry.get(name));
    }

    /// Tried: a job whose passes fail twice and then succeed. Must hold: both failures are counted
    /// with the last error, the success resets the consecutive count but keeps the totals, and
    /// the job is shown stopped after shutdown.
    #[tokio::test]
    async fn failures_are_counted_and_a_success_clears_the_streak() {
        let dir = tempfile::tempdir().unwrap();
        let runner = runner(dir.path()).await;
        let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = Arc::clone(&calls);
        let handle = runner.spawn("flaky", Duration::from_millis(100), move || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { if n < 2 { Err(format!("failure {n}")) } else { Ok(()) } }
        });
        let after_two = wait_for(&runner.registry, "flaky", 2).await;
        assert_eq!((after_two.failures, after_two.consecutive_failures), (2, 2));
        assert_eq!(after_two.last_error.as_deref(), Some("failure 1"));
        let after_three = wait_for(&runner.registry, "flaky", 3).await;
        assert_eq!(after_three.failures, 2);
        assert_eq!(after_three.consecutive_failures, 0);
        assert!(after_three.last_started.is_some() && after_three.last_finished.is_some());
        runner.shutdown.cancel();
        handle.await.unwrap();
        assert_eq!(runner.registry.get("flaky").unwrap().state, JobState::Stopped);
    }

    /// Tried: two replicas running the same job against one database. Must hold: only one runs
    /// it; the other shows it on standby with no runs.
    #[tokio::test]
    async fn the_replica_without_the_lease_stands_by() {
        let dir = tempfile::tempdir().unwrap();
        let first = runner(dir.path()).await;
        let mut second = first.clone();
        second.registry = Arc::default();
        second.holder = "replica-other".to_owned();
        let a = first.spawn("once", Duration::from_secs(60), || async { Ok::<_, String>(()) });
        wait_for(&first.registry, "once", 1).await;
        let b = second.spawn("once", Duration::from_secs(60), || async { Ok::<_, String>(()) });
        for _ in 0..200 {
            if second
                .registry
                .get("once")
                .is_some_and(|s| s.state == JobState::Standby)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let standby = second.registry.get("once").unwrap();
        assert_eq!((standby.state, standby.runs), (JobState::Standby, 0));
        first.shutdown.cancel();
        a.await.unwrap();
        b.await.unwrap();
    }

    #[test]
    fn reported_progress_is_shown() {
        let registry = Registry::default();
        registry.add("repair", Duration::from_secs(60));
        registry.report("repair", &serde_json::json!({"queued": 3}));
        assert_eq!(registry.get("repair").unwrap().progress["queued"], 3);
        assert_eq!(registry.list().len(), 1);
    }
}
