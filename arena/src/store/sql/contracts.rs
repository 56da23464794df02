//! Contracts, their acceptances, the contract each queued real run is reserved under, and
//! the metered use of finished runs.

use super::*;
use crate::contract::{
    Contract, ContractAcceptance, ContractId, ContractState, ContractTerms, Delivery, Party,
    UsageLine,
};
use crate::ids::SubmissionId;

const CONTRACT_COLS: &str = "id, terms, terms_sha256, required_parties, state, suspended_by, \
                             state_reason, proposed_by, proposed_at, state_changed_at";

async fn load_contract(conn: &mut DbConn, row: &DbRow) -> StoreResult<Contract> {
    let id = ContractId(row.try_get("id")?);
    let terms: ContractTerms = serde_json::from_str(&row.try_get::<String, _>("terms")?)?;
    let required: Vec<Party> =
        serde_json::from_str(&row.try_get::<String, _>("required_parties")?)?;
    let acceptances = sqlx::query(
        "SELECT party, accepted_by, accepted_at, terms_sha256 FROM contract_acceptances \
         WHERE contract_id = $1 ORDER BY accepted_at, party",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|a| {
        let key: String = a.try_get("party")?;
        Ok(ContractAcceptance {
            party: Party::from_key(&key)
                .ok_or_else(|| StoreError::Corrupt(format!("contract party `{key}`")))?,
            accepted_by: AccountId(a.try_get("accepted_by")?),
            accepted_at: ts(a, "accepted_at")?,
            terms_sha256: a.try_get("terms_sha256")?,
        })
    })
    .collect::<StoreResult<Vec<_>>>()?;
    let suspended_by = row
        .try_get::<Option<String>, _>("suspended_by")?
        .map(|key| {
            Party::from_key(&key)
                .ok_or_else(|| StoreError::Corrupt(format!("contract party `{key}`")))
        })
        .transpose()?;
    Ok(Contract {
        id,
        terms,
        terms_sha256: row.try_get("terms_sha256")?,
        state: parse(row.try_get("state")?)?,
        required,
        acceptances,
        suspended_by,
        state_reason: row.try_get("state_reason")?,
        proposed_by: AccountId(row.try_get("proposed_by")?),
        proposed_at: ts(row, "proposed_at")?,
        state_changed_at: ts(row, "state_changed_at")?,
    })
}

async fn contract_in(conn: &mut DbConn, id: ContractId) -> StoreResult<Option<Contract>> {
    let row = sqlx::query(&format!(
        "SELECT {CONTRACT_COLS} FROM contracts WHERE id = $1"
    ))
    .bind(id.0)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => Ok(Some(load_contract(conn, &row).await?)),
        None => Ok(None),
    }
}

/// A contract that must exist (one this transaction just wrote or was given).
async fn existing_contract(conn: &mut DbConn, id: ContractId) -> StoreResult<Contract> {
    contract_in(conn, id)
        .await?
        .ok_or_else(|| StoreError::Missing(id.to_string()))
}

/// Moves `id` to `to` when it is in one of `from`; records the transition.
async fn transition(
    conn: &mut DbConn,
    stamp: Stamp,
    id: ContractId,
    from: &[ContractState],
    to: ContractState,
    party: Option<Party>,
    reason: Option<&str>,
) -> StoreResult<bool> {
    let Some(current) = contract_in(conn, id).await? else {
        return Ok(false);
    };
    if !from.contains(&current.state) {
        return Ok(false);
    }
    let suspended_by = (to == ContractState::Suspended)
        .then_some(party)
        .flatten()
        .map(Party::key);
    let changed = sqlx::query(
        "UPDATE contracts SET state = $2, suspended_by = $3, state_reason = $4, \
         state_changed_at = $5 WHERE id = $1 AND state = $6",
    )
    .bind(id.0)
    .bind(to.as_str())
    .bind(suspended_by)
    .bind(reason)
    .bind(stamp.at.0)
    .bind(current.state.as_str())
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if changed {
        record(
            conn,
            stamp,
            AuditEvent::ContractStateChanged {
                contract: id,
                state: to,
                party: party.map(Party::key),
                reason: reason.map(str::to_owned),
            },
        )
        .await?;
    }
    Ok(changed)
}

/// The active contract that lets `job`'s team read `dataset` in its competition at `at` with
/// `delivery` and has room for `micro` more ε of the team's (its own cap over the team's
/// charges in the competition), or why there is none. Called in the reservation's
/// transaction, so the cap and the contract's state are read where the charge is written.
pub(super) async fn covering_contract(
    conn: &mut DbConn,
    job: &Job,
    dataset: DatasetId,
    delivery: Delivery,
    at: Timestamp,
    spent_here_micro: i64,
    micro: i64,
) -> StoreResult<Result<ContractId, String>> {
    let rows = sqlx::query(&format!(
        "SELECT {CONTRACT_COLS} FROM contracts WHERE competition_id = $1 AND state = 'active' \
         AND id IN (SELECT contract_id FROM contract_datasets WHERE dataset_id = $2) ORDER BY id"
    ))
    .bind(job.competition.0)
    .bind(dataset.0)
    .fetch_all(&mut *conn)
    .await?;
    let mut over_cap = None;
    for row in &rows {
        let contract = load_contract(conn, row).await?;
        if !contract.covers(job.team, dataset, delivery, at) {
            continue;
        }
        let cap = medarena_scorer::budget::micro_epsilon_limit(contract.terms.per_team_epsilon)
            .unwrap_or(0);
        if spent_here_micro.saturating_add(micro) > cap {
            over_cap = Some(contract.id);
            continue;
        }
        return Ok(Ok(contract.id));
    }
    Ok(Err(match over_cap {
        Some(id) => format!(
            "the ε cap per team of {id} on {dataset} is reached: a run needs ε = {} more",
            epsilon_of_micro(micro)
        ),
        None => format!(
            "no active contract covers this team's use of {dataset} in this competition for {}: \
             its hospitals, the platform and the team must accept one (medarena contract list)",
            delivery.as_str()
        ),
    }))
}

/// Records which contract each dataset of the queued real run `job` is reserved under.
pub(super) async fn insert_run_contracts(
    conn: &mut DbConn,
    job: JobId,
    contracts: &[(DatasetId, ContractId)],
) -> StoreResult<()> {
    for (dataset, contract) in contracts {
        sqlx::query(
            "INSERT INTO run_contracts (job_id, dataset_id, contract_id) VALUES ($1, $2, $3)",
        )
        .bind(job.0)
        .bind(dataset.0)
        .bind(contract.0)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn run_contracts_in(
    conn: &mut DbConn,
    job: JobId,
) -> StoreResult<Vec<(DatasetId, ContractId)>> {
    sqlx::query(
        "SELECT dataset_id, contract_id FROM run_contracts WHERE job_id = $1 ORDER BY dataset_id",
    )
    .bind(job.0)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| {
        Ok((
            DatasetId(row.try_get("dataset_id")?),
            ContractId(row.try_get("contract_id")?),
        ))
    })
    .collect()
}

/// Meters a finished real run on each contract it was queued under: one `run_usage` line
/// and one `run_metered` event per dataset (stamped like the run's other events).
pub(super) async fn meter_run(
    conn: &mut DbConn,
    stamp: Stamp,
    job: &Job,
    metering: &Metering,
) -> StoreResult<()> {
    for (dataset, contract_id) in run_contracts_in(conn, job.id).await? {
        let contract = existing_contract(conn, contract_id).await?;
        let micro: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(micro_epsilon), 0) AS BIGINT) FROM privacy_charges \
             WHERE job_id = $1 AND dataset_id = $2",
        )
        .bind(job.id.0)
        .bind(dataset.0)
        .fetch_one(&mut *conn)
        .await?;
        let rows_read: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(row_count), 0) AS BIGINT) FROM contributions \
             WHERE dataset_id = $1 AND state = 'validated' AND withdrawn_at IS NULL",
        )
        .bind(dataset.0)
        .fetch_one(&mut *conn)
        .await?;
        let quote = &contract.terms.quote;
        let amount = quote.amount(1, metering.cpu_seconds_billed, micro);
        let billed = i64::try_from(metering.cpu_seconds_billed).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO run_usage (job_id, dataset_id, contract_id, competition_id, team_id, \
             submission_id, cpu_seconds_billed, micro_epsilon, amount, currency, \
             cpu_millis_measured, peak_memory_bytes, rows_read, metered_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (job_id, dataset_id) DO NOTHING",
        )
        .bind(job.id.0)
        .bind(dataset.0)
        .bind(contract_id.0)
        .bind(job.competition.0)
        .bind(job.team.0)
        .bind(job.submission.0)
        .bind(billed)
        .bind(micro)
        .bind(amount.to_string())
        .bind(&quote.currency)
        .bind(metering.measured.cpu_millis)
        .bind(metering.measured.peak_memory_bytes)
        .bind(rows_read)
        .bind(stamp.at.0)
        .execute(&mut *conn)
        .await?;
        record(
            conn,
            stamp,
            AuditEvent::RunMetered {
                contract: contract_id,
                job: job.id,
                dataset,
                team: job.team,
                epsilon: epsilon_of_micro(micro),
                cpu_seconds_billed: metering.cpu_seconds_billed,
                amount: amount.to_string(),
                currency: quote.currency.clone(),
            },
        )
        .await?;
    }
    Ok(())
}

fn usage_from(row: &DbRow) -> StoreResult<UsageLine> {
    let amount: String = row.try_get("amount")?;
    Ok(UsageLine {
        contract: ContractId(row.try_get("contract_id")?),
        competition: CompetitionId(row.try_get("competition_id")?),
        team: OrgId(row.try_get("team_id")?),
        dataset: DatasetId(row.try_get("dataset_id")?),
        submission: SubmissionId(row.try_get("submission_id")?),
        job: JobId(row.try_get("job_id")?),
        metered_at: ts(row, "metered_at")?,
        epsilon: epsilon_of_micro(row.try_get("micro_epsilon")?),
        cpu_seconds_billed: u64::try_from(row.try_get::<i64, _>("cpu_seconds_billed")?)
            .unwrap_or(0),
        amount: amount
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("usage amount `{amount}`")))?,
        currency: row.try_get("currency")?,
        rows_read: Some(row.try_get("rows_read")?),
        cpu_millis_measured: row.try_get("cpu_millis_measured")?,
        peak_memory_bytes: row.try_get("peak_memory_bytes")?,
        evidence: None,
    })
}

#[async_trait]
impl ContractRepo for SqlStore {
    async fn insert_contract(&self, stamp: Stamp, new: &NewContract) -> StoreResult<Contract> {
        let mut tx = self.write_tx().await?;
        let terms = &new.terms;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO contracts (competition_id, team_id, terms, terms_sha256, \
             required_parties, state, valid_from, valid_until, proposed_by, proposed_at, \
             state_changed_at) VALUES ($1, $2, $3, $4, $5, 'proposed', $6, $7, $8, $9, $9) \
             RETURNING id",
        )
        .bind(terms.competition.0)
        .bind(terms.team.map(|t| t.0))
        .bind(serde_json::to_string(terms)?)
        .bind(&new.terms_sha256)
        .bind(serde_json::to_string(&new.required)?)
        .bind(terms.valid_from.0)
        .bind(terms.valid_until.0)
        .bind(stamp.actor.map(|a| a.0))
        .bind(stamp.at.0)
        .fetch_one(&mut *tx)
        .await?;
        let id = ContractId(id);
        for dataset in &terms.datasets {
            sqlx::query("INSERT INTO contract_datasets (contract_id, dataset_id) VALUES ($1, $2)")
                .bind(id.0)
                .bind(dataset.0)
                .execute(&mut *tx)
                .await?;
        }
        record(
            &mut tx,
            stamp,
            AuditEvent::ContractProposed {
                contract: id,
                competition: terms.competition,
                terms_sha256: new.terms_sha256.clone(),
            },
        )
        .await?;
        let contract = existing_contract(&mut tx, id).await?;
        tx.commit().await?;
        Ok(contract)
    }

    async fn contract(&self, id: ContractId) -> StoreResult<Option<Contract>> {
        let mut conn = self.pool.acquire().await?;
        contract_in(&mut conn, id).await
    }

    async fn contracts(&self, competition: Option<CompetitionId>) -> StoreResult<Vec<Contract>> {
        let mut conn = self.pool.acquire().await?;
        // A typed sentinel rather than a NULL parameter: PostgreSQL cannot type `$1 IS NULL`.
        let rows = sqlx::query(&format!(
            "SELECT {CONTRACT_COLS} FROM contracts WHERE ($1 = 0 OR competition_id = $1) \
             ORDER BY id DESC"
        ))
        .bind(competition.map_or(0, |c| c.0))
        .fetch_all(&mut *conn)
        .await?;
        let mut contracts = Vec::with_capacity(rows.len());
        for row in &rows {
            contracts.push(load_contract(&mut conn, row).await?);
        }
        Ok(contracts)
    }

    async fn accept_contract(
        &self,
        stamp: Stamp,
        id: ContractId,
        party: Party,
    ) -> StoreResult<AcceptContract> {
        let mut tx = self.write_tx().await?;
        let contract = existing_contract(&mut tx, id).await?;
        let open_offer_team = matches!(party, Party::Team { .. }) && contract.terms.team.is_none();
        let takes = contract.state == ContractState::Proposed
            || (open_offer_team && contract.state == ContractState::Active);
        if !takes {
            return Ok(AcceptContract::Closed(contract.state));
        }
        let account = stamp
            .actor
            .ok_or_else(|| StoreError::Corrupt("an acceptance without an account".to_owned()))?;
        let inserted = sqlx::query(
            "INSERT INTO contract_acceptances (contract_id, party, accepted_by, accepted_at, \
             terms_sha256) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (contract_id, party) DO NOTHING",
        )
        .bind(id.0)
        .bind(party.key())
        .bind(account.0)
        .bind(stamp.at.0)
        .bind(&contract.terms_sha256)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            return Ok(AcceptContract::AlreadyAccepted);
        }
        record(
            &mut tx,
            stamp,
            AuditEvent::ContractAccepted {
                contract: id,
                party: party.key(),
                terms_sha256: contract.terms_sha256.clone(),
            },
        )
        .await?;
        let mut accepted = existing_contract(&mut tx, id).await?;
        if accepted.state == ContractState::Proposed
            && accepted.awaiting().is_empty()
            && accepted.terms.in_window(stamp.at)
        {
            transition(
                &mut tx,
                stamp,
                id,
                &[ContractState::Proposed],
                ContractState::Active,
                Some(party),
                None,
            )
            .await?;
            accepted = existing_contract(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(AcceptContract::Accepted(Box::new(accepted)))
    }

    async fn set_contract_state(
        &self,
        stamp: Stamp,
        id: ContractId,
        from: &[ContractState],
        to: ContractState,
        party: Option<Party>,
        reason: Option<&str>,
    ) -> StoreResult<Option<Contract>> {
        let mut tx = self.write_tx().await?;
        if !transition(&mut tx, stamp, id, from, to, party, reason).await? {
            return Ok(None);
        }
        let contract = contract_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(contract)
    }

    async fn expire_contracts(&self, now: Timestamp) -> StoreResult<usize> {
        // Called on every read of contracts: look before taking the write lock.
        let any: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM contracts WHERE valid_until <= $1 \
             AND state IN ('proposed', 'active', 'suspended')",
        )
        .bind(now.0)
        .fetch_one(&self.pool)
        .await?;
        if any == 0 {
            return Ok(0);
        }
        let mut tx = self.write_tx().await?;
        let due: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM contracts WHERE valid_until <= $1 \
             AND state IN ('proposed', 'active', 'suspended') ORDER BY id",
        )
        .bind(now.0)
        .fetch_all(&mut *tx)
        .await?;
        let stamp = Stamp {
            at: now,
            actor: None,
        };
        let from = [
            ContractState::Proposed,
            ContractState::Active,
            ContractState::Suspended,
        ];
        for id in &due {
            transition(
                &mut tx,
                stamp,
                ContractId(*id),
                &from,
                ContractState::Expired,
                None,
                None,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(due.len())
    }

    async fn fulfil_contracts(
        &self,
        stamp: Stamp,
        competition: CompetitionId,
    ) -> StoreResult<usize> {
        let mut tx = self.write_tx().await?;
        let due: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM contracts WHERE competition_id = $1 \
             AND state IN ('active', 'suspended') ORDER BY id",
        )
        .bind(competition.0)
        .fetch_all(&mut *tx)
        .await?;
        for id in &due {
            transition(
                &mut tx,
                stamp,
                ContractId(*id),
                &[ContractState::Active, ContractState::Suspended],
                ContractState::Fulfilled,
                Some(Party::Platform),
                None,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(due.len())
    }

    async fn run_contracts(&self, job: JobId) -> StoreResult<Vec<(DatasetId, ContractId)>> {
        let mut conn = self.pool.acquire().await?;
        run_contracts_in(&mut conn, job).await
    }

    async fn usage(&self, query: &UsageQuery) -> StoreResult<Vec<UsageLine>> {
        // Typed sentinels for absent filters (0 ids, the full time range), as above.
        let rows = sqlx::query(
            "SELECT job_id, dataset_id, contract_id, competition_id, team_id, submission_id, \
             cpu_seconds_billed, micro_epsilon, amount, currency, cpu_millis_measured, \
             peak_memory_bytes, rows_read, metered_at FROM run_usage \
             WHERE ($1 = 0 OR contract_id = $1) AND ($2 = 0 OR team_id = $2) \
             AND ($3 = 0 OR dataset_id IN (SELECT dataset_id FROM contributions \
                                           WHERE hospital_id = $3)) \
             AND metered_at >= $4 AND metered_at < $5 \
             ORDER BY metered_at, job_id, dataset_id",
        )
        .bind(query.contract.map_or(0, |c| c.0))
        .bind(query.team.map_or(0, |t| t.0))
        .bind(query.hospital.map_or(0, |h| h.0))
        .bind(query.from.map_or(i64::MIN, |t| t.0))
        .bind(query.to.map_or(i64::MAX, |t| t.0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(usage_from).collect()
    }
}
