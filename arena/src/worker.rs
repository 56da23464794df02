//! A pool of workers inside one process, each looping: claim a job, run it, repeat; when the
//! queue is empty, wait for a wake-up or the poll interval.
//!
//! Dummy-data runs and real-data runs have workers of their own (half each, at least one of
//! each): a real run lasts as long as the data and the submission make it, and a dummy run
//! queued behind it would start, and be seen to start, later. Kept apart, the times of dummy
//! runs depend on dummy runs only (what they still share is the machine's CPU; see
//! `PRIVACY.md`).
//!
//! Several processes may run pools against one database: claims are atomic and leased, so a
//! job runs on one worker at a time, and a crashed worker's job is claimed again once its
//! lease expires.

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::model::JobKind;
use crate::service::Arena;

/// Running workers. Dropping the pool without [`WorkerPool::shutdown`] aborts them.
pub struct WorkerPool {
    stop: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    /// Starts `arena.config().queue.concurrency` workers (at least one for each kind of
    /// job): half run dummy-data jobs (`<prefix>-<pid>-dummy-<n>`), the rest real-data jobs
    /// (`<prefix>-<pid>-real-<n>`).
    pub fn spawn(arena: &Arena, prefix: &str) -> Self {
        let (stop, stopped) = watch::channel(false);
        let count = arena.config().queue.concurrency.max(2);
        let dummy = count / 2;
        let pid = std::process::id();
        let workers = (0..count)
            .map(|n| {
                let arena = arena.clone();
                let kind = if n < dummy {
                    JobKind::DummyRun
                } else {
                    JobKind::RealRun
                };
                let name = match kind {
                    JobKind::DummyRun => format!("{prefix}-{pid}-dummy-{n}"),
                    JobKind::RealRun => format!("{prefix}-{pid}-real-{}", n - dummy),
                };
                let stopped = stopped.clone();
                tokio::spawn(async move { work(arena, name, kind, stopped).await })
            })
            .collect();
        Self { stop, workers }
    }

    pub fn len(&self) -> usize {
        self.workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Asks every worker to stop after its current job and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for worker in self.workers.drain(..) {
            let _ = worker.await;
        }
    }

    /// Stops every worker at once, mid-job (what a crash does; their leases will expire).
    pub fn abort(mut self) {
        for worker in self.workers.drain(..) {
            worker.abort();
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        for worker in &self.workers {
            worker.abort();
        }
    }
}

async fn work(arena: Arena, name: String, kind: JobKind, mut stopped: watch::Receiver<bool>) {
    let poll = arena.config().queue.poll_interval;
    tracing::info!(worker = %name, "worker started");
    while !*stopped.borrow() {
        // Register for wake-ups before looking, so a job enqueued in between is not missed.
        let woken = arena.jobs_ready().notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        match arena.run_next_job_of(&name, Some(kind)).await {
            Ok(Some(report)) => {
                tracing::debug!(worker = %name, job = report.job.0, end = ?report.end, "job done");
                continue;
            }
            Ok(None) => {}
            Err(err) => tracing::error!(worker = %name, error = %err, "worker iteration failed"),
        }
        tokio::select! {
            _ = &mut woken => {}
            _ = tokio::time::sleep(poll) => {}
            _ = stopped.changed() => {}
        }
    }
    tracing::info!(worker = %name, "worker stopped");
}
