//! A hospital's withdrawal of a contribution.

use super::*;

pub(super) async fn withdraw(
    store: &SqlStore,
    stamp: Stamp,
    id: ContributionId,
    reason: &str,
) -> StoreResult<Option<(Contribution, Option<ObjectId>)>> {
    let mut tx = store.write_tx().await?;
    let before = sqlx::query(&format!(
        "SELECT {CONTRIBUTION_COLS} FROM contributions WHERE id = $1"
    ))
    .bind(id.0)
    .fetch_optional(&mut *tx)
    .await?
    .map(|row| contribution_from(&row))
    .transpose()?
    .ok_or_else(|| StoreError::Missing(id.to_string()))?;
    if before.withdrawn_at.is_some() {
        return Ok(None);
    }
    let row = sqlx::query(&format!(
        "UPDATE contributions SET withdrawn_at = $2, withdrawal_reason = $3, object_id = NULL \
         WHERE id = $1 AND withdrawn_at IS NULL RETURNING {CONTRIBUTION_COLS}"
    ))
    .bind(id.0)
    .bind(stamp.at.0)
    .bind(reason)
    .fetch_one(&mut *tx)
    .await?;
    let withdrawn = contribution_from(&row)?;
    // Its own key goes; a legacy upload sealed with its dataset's key keeps that key (other
    // contributions need it), and only its bytes are deleted.
    if let Some(scope) = &before.key_scope {
        sqlx::query("DELETE FROM data_keys WHERE scope = $1")
            .bind(scope)
            .execute(&mut *tx)
            .await?;
    }
    record(
        &mut tx,
        stamp,
        AuditEvent::ContributionWithdrawn {
            contribution: id,
            dataset: before.dataset,
            hospital: before.hospital,
        },
    )
    .await?;
    // The hospital's synthetic releases were measured from its rows: they go with them.
    let releases = sqlx::query(
        "UPDATE synthetic_releases SET state = CASE WHEN state = 'draft' THEN 'discarded' \
         ELSE 'withdrawn' END WHERE dataset_id = $1 AND hospital_id = $2 \
         AND state IN ('draft', 'published') RETURNING id, state, measurements_sha256",
    )
    .bind(before.dataset.0)
    .bind(before.hospital.0)
    .fetch_all(&mut *tx)
    .await?;
    for release in &releases {
        record(
            &mut tx,
            stamp,
            AuditEvent::SyntheticDataStateChanged {
                dataset: before.dataset,
                hospital: before.hospital,
                release: SyntheticReleaseId(release.try_get("id")?),
                state: parse(release.try_get("state")?)?,
                measurements_sha256: release.try_get("measurements_sha256")?,
            },
        )
        .await?;
    }
    // A dataset still under review loses the withdrawn rows from its validation.
    sqlx::query(
        "UPDATE datasets SET state = CASE \
           WHEN EXISTS (SELECT 1 FROM contributions c WHERE c.dataset_id = $1 \
                        AND c.state = 'validated' AND c.withdrawn_at IS NULL) \
             THEN 'validated' \
           ELSE 'uploaded' END \
         WHERE id = $1 AND state = 'validated'",
    )
    .bind(before.dataset.0)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some((withdrawn, before.object)))
}
