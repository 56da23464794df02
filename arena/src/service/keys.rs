//! The key service: a server host opens, for a worker host, the data keys of the one job
//! that worker holds the lease of, and no others. Worker hosts then need no master key:
//! one stolen keeps no key to the platform's past, nor to withdrawn uploads, nor to any
//! dataset its jobs do not read.

use zeroize::Zeroizing;

use super::Arena;
use crate::crypto::DataKey;
use crate::error::{ArenaError, ArenaResult};
use crate::executor::ExecutorError;
use crate::model::JobKind;
use crate::vault::{JobLease, KeyScope, VaultError};

impl Arena {
    /// The bearer token worker hosts present to the key service
    /// ([`crate::crypto::MasterKey::worker_token`]); `None` on a worker host.
    pub fn worker_token(&self) -> Option<Zeroizing<String>> {
        self.inner
            .vault
            .master_key()
            .map(|master| master.worker_token())
    }

    /// The data key of `scope` for the worker holding `lease`: granted only while the lease
    /// holds, and only for a scope that job reads. A dummy run reads its team's module and
    /// nothing a hospital uploaded; a real run also reads the usable contributions of its
    /// competition's datasets (a suspended dataset or a withdrawn upload is refused here,
    /// as it is to a worker with the master key).
    pub async fn grant_data_key(&self, lease: &JobLease, scope: &str) -> ArenaResult<DataKey> {
        let refused = || ArenaError::Forbidden("no running job of this lease reads that".into());
        let store = &self.inner.store;
        if !store
            .lease_holds(lease.job, &lease.token, self.now())
            .await?
        {
            return Err(refused());
        }
        let job = store.job(lease.job).await?.ok_or_else(refused)?;
        let mut readable = vec![KeyScope::Team(job.team)];
        if job.kind == JobKind::RealRun {
            let competition = self.load_competition(job.competition).await?;
            let contributions = self
                .run_contributions(&competition, job.kind)
                .await
                .map_err(|err| match err {
                    ExecutorError::Permanent(why) => ArenaError::Forbidden(why),
                    other => ArenaError::Internal(other.to_string()),
                })?;
            readable.extend(contributions.iter().map(|(_, c)| c.scope()));
        }
        let scope = readable
            .into_iter()
            .find(|readable| readable.to_string() == scope)
            .ok_or_else(refused)?;
        let key = self
            .inner
            .vault
            .existing_data_key(&scope)
            .await
            .map_err(|err| match err {
                VaultError::KeyDestroyed(scope) => {
                    ArenaError::NotFound(format!("the data key of {scope} (destroyed)"))
                }
                other => other.into(),
            })?;
        // For operators: which job's worker read what (the public ledger has the run).
        tracing::info!(job = lease.job.0, %scope, "data key granted to a worker host");
        Ok(key)
    }
}
