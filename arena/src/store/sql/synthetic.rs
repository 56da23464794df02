//! Hospitals' synthetic releases.

use super::*;
use crate::model::{SyntheticQuality, SyntheticRelease, SyntheticState};

const SYNTHETIC_COLS: &str = "id, dataset_id, hospital_id, state, micro_epsilon, delta, rho, \
                              synthesizer, measurements_sha256, quality, created_at, published_at";

fn synthetic_from(row: &DbRow) -> StoreResult<SyntheticRelease> {
    let quality: SyntheticQuality = typed_json_opt(row, "quality")?
        .ok_or_else(|| StoreError::Corrupt("a synthetic release without quality".to_owned()))?;
    Ok(SyntheticRelease {
        id: SyntheticReleaseId(row.try_get("id")?),
        dataset: DatasetId(row.try_get("dataset_id")?),
        hospital: OrgId(row.try_get("hospital_id")?),
        state: parse(row.try_get("state")?)?,
        epsilon: epsilon_of_micro(row.try_get("micro_epsilon")?),
        delta: row.try_get("delta")?,
        rho: row.try_get("rho")?,
        synthesizer: row.try_get("synthesizer")?,
        quality,
        measurements_sha256: row.try_get("measurements_sha256")?,
        created_at: ts(row, "created_at")?,
        published_at: ts_opt(row, "published_at")?,
    })
}

/// The ε the synthetic releases of `dataset` spent, in micro-ε: each hospital's releases
/// add up, hospitals compose in parallel (their rows are disjoint), so the largest sum.
pub(super) async fn synthetic_spent(conn: &mut DbConn, dataset: DatasetId) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(COALESCE(MAX(spent), 0) AS BIGINT) FROM \
         (SELECT SUM(micro_epsilon) AS spent FROM synthetic_releases WHERE dataset_id = $1 \
          GROUP BY hospital_id) AS per_hospital",
    )
    .bind(dataset.0)
    .fetch_one(&mut *conn)
    .await?)
}

/// The ε all teams together and the most one team spent on `dataset`, in micro-ε.
pub(super) async fn teams_spent(conn: &mut DbConn, dataset: DatasetId) -> StoreResult<(i64, i64)> {
    let total: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(micro_epsilon), 0) AS BIGINT) FROM privacy_charges \
         WHERE dataset_id = $1",
    )
    .bind(dataset.0)
    .fetch_one(&mut *conn)
    .await?;
    let most: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(micro_epsilon) AS BIGINT) AS spent FROM privacy_charges \
         WHERE dataset_id = $1 GROUP BY team_id ORDER BY spent DESC LIMIT 1",
    )
    .bind(dataset.0)
    .fetch_optional(&mut *conn)
    .await?;
    Ok((total, most.unwrap_or(0)))
}

async fn release_in(
    conn: &mut DbConn,
    id: SyntheticReleaseId,
) -> StoreResult<Option<SyntheticRelease>> {
    sqlx::query(&format!(
        "SELECT {SYNTHETIC_COLS} FROM synthetic_releases WHERE id = $1"
    ))
    .bind(id.0)
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(synthetic_from)
    .transpose()
}

/// Moves one release to `to` and records it.
async fn move_release(
    conn: &mut DbConn,
    stamp: Stamp,
    release: &SyntheticRelease,
    to: SyntheticState,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE synthetic_releases SET state = $1, \
         published_at = CASE WHEN $1 = 'published' THEN $2 ELSE published_at END WHERE id = $3",
    )
    .bind(to.as_str())
    .bind(stamp.at.0)
    .bind(release.id.0)
    .execute(&mut *conn)
    .await?;
    record(
        conn,
        stamp,
        AuditEvent::SyntheticDataStateChanged {
            dataset: release.dataset,
            hospital: release.hospital,
            release: release.id,
            state: to,
            measurements_sha256: release.measurements_sha256.clone(),
        },
    )
    .await
}

#[async_trait]
impl SyntheticRepo for SqlStore {
    async fn insert_synthetic_release(
        &self,
        stamp: Stamp,
        new: &NewSyntheticRelease,
    ) -> StoreResult<InsertSynthetic> {
        let mut tx = self.write_tx().await?;
        let (caps, _) = terms_in(&mut tx, new.dataset, &new.default_terms).await?;
        let own: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(micro_epsilon), 0) AS BIGINT) FROM synthetic_releases \
             WHERE dataset_id = $1 AND hospital_id = $2",
        )
        .bind(new.dataset.0)
        .bind(new.hospital.0)
        .fetch_one(&mut *tx)
        .await?;
        let synthetic = synthetic_spent(&mut tx, new.dataset)
            .await?
            .max(own.saturating_add(new.micro_epsilon));
        let (total, most) = teams_spent(&mut tx, new.dataset).await?;
        let refusal = if most.saturating_add(synthetic) > caps.per_team_micro {
            Some(("the hospitals' cap per team", caps.per_team_micro, most))
        } else if total.saturating_add(synthetic) > caps.total_micro {
            Some(("the hospitals' total across teams", caps.total_micro, total))
        } else {
            None
        };
        if let Some((which, cap, spent)) = refusal {
            return Ok(InsertSynthetic::OverBudget(format!(
                "ε = {} of synthetic data on {} would exceed {which} (ε = {}; teams spent ε = {}, \
                 synthetic releases ε = {} with this one)",
                epsilon_of_micro(new.micro_epsilon),
                new.dataset,
                epsilon_of_micro(cap),
                epsilon_of_micro(spent),
                epsilon_of_micro(synthetic),
            )));
        }
        let quality = serde_json::to_string(&new.quality)?;
        let row = sqlx::query(&format!(
            "INSERT INTO synthetic_releases (dataset_id, hospital_id, state, micro_epsilon, delta, \
             rho, synthesizer, measurements, measurements_sha256, quality, created_by, created_at) \
             VALUES ($1, $2, 'draft', $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {SYNTHETIC_COLS}"
        ))
        .bind(new.dataset.0)
        .bind(new.hospital.0)
        .bind(new.micro_epsilon)
        .bind(new.delta)
        .bind(new.rho)
        .bind(&new.synthesizer)
        .bind(&new.measurements)
        .bind(&new.measurements_sha256)
        .bind(quality)
        .bind(stamp.actor.map(|a| a.0))
        .bind(stamp.at.0)
        .fetch_one(&mut *tx)
        .await?;
        let release = synthetic_from(&row)?;
        record(
            &mut tx,
            stamp,
            AuditEvent::SyntheticDataMeasured {
                dataset: release.dataset,
                hospital: release.hospital,
                release: release.id,
                epsilon: release.epsilon,
                delta: release.delta,
                synthesizer: release.synthesizer.clone(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(InsertSynthetic::Inserted(Box::new(release)))
    }

    async fn synthetic_release(
        &self,
        id: SyntheticReleaseId,
    ) -> StoreResult<Option<SyntheticRelease>> {
        let mut conn = self.pool.acquire().await?;
        release_in(&mut conn, id).await
    }

    async fn synthetic_releases(&self, dataset: DatasetId) -> StoreResult<Vec<SyntheticRelease>> {
        sqlx::query(&format!(
            "SELECT {SYNTHETIC_COLS} FROM synthetic_releases WHERE dataset_id = $1 ORDER BY id DESC"
        ))
        .bind(dataset.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(synthetic_from)
        .collect()
    }

    async fn synthetic_measurements(&self, id: SyntheticReleaseId) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT measurements FROM synthetic_releases WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn set_synthetic_state(
        &self,
        stamp: Stamp,
        id: SyntheticReleaseId,
        from: &[SyntheticState],
        to: SyntheticState,
    ) -> StoreResult<Option<SyntheticRelease>> {
        let mut tx = self.write_tx().await?;
        let Some(release) = release_in(&mut tx, id).await? else {
            return Ok(None);
        };
        if !from.contains(&release.state) {
            return Ok(None);
        }
        if to == SyntheticState::Published {
            let previous = sqlx::query(&format!(
                "SELECT {SYNTHETIC_COLS} FROM synthetic_releases \
                 WHERE dataset_id = $1 AND hospital_id = $2 AND state = 'published' AND id <> $3"
            ))
            .bind(release.dataset.0)
            .bind(release.hospital.0)
            .bind(release.id.0)
            .fetch_all(&mut *tx)
            .await?;
            for row in &previous {
                let previous = synthetic_from(row)?;
                move_release(&mut tx, stamp, &previous, SyntheticState::Withdrawn).await?;
            }
        }
        move_release(&mut tx, stamp, &release, to).await?;
        let moved = release_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(moved)
    }
}
