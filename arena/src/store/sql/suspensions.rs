//! Hospitals' suspensions of a dataset's use.

use super::*;
use crate::model::DatasetSuspension;

/// The suspensions of `dataset`, by hospital.
pub(super) async fn suspensions_of(
    conn: &mut DbConn,
    dataset: DatasetId,
) -> StoreResult<Vec<DatasetSuspension>> {
    sqlx::query(
        "SELECT hospital_id, reason, suspended_at FROM dataset_suspensions \
         WHERE dataset_id = $1 ORDER BY hospital_id",
    )
    .bind(dataset.0)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| {
        Ok(DatasetSuspension {
            hospital: OrgId(row.try_get("hospital_id")?),
            reason: row.try_get("reason")?,
            suspended_at: ts(row, "suspended_at")?,
        })
    })
    .collect()
}

/// Why no real run may read `dataset` now, if a hospital suspended it.
pub(super) async fn suspension_refusal(
    conn: &mut DbConn,
    dataset: DatasetId,
) -> StoreResult<Option<String>> {
    Ok(suspensions_of(conn, dataset).await?.first().map(|s| {
        format!(
            "{dataset} is suspended by its hospital {}: {}",
            s.hospital, s.reason
        )
    }))
}

pub(super) async fn set_suspension(
    store: &SqlStore,
    stamp: Stamp,
    dataset: DatasetId,
    hospital: OrgId,
    reason: Option<&str>,
) -> StoreResult<bool> {
    let mut tx = store.write_tx().await?;
    let changed = match reason {
        Some(reason) => {
            let inserted = sqlx::query(
                "INSERT INTO dataset_suspensions (dataset_id, hospital_id, reason, suspended_by, \
                 suspended_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (dataset_id, hospital_id) \
                 DO NOTHING",
            )
            .bind(dataset.0)
            .bind(hospital.0)
            .bind(reason)
            .bind(stamp.actor.map(|a| a.0))
            .bind(stamp.at.0)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if inserted {
                let event = AuditEvent::DatasetSuspended {
                    dataset,
                    hospital,
                    reason: reason.to_owned(),
                };
                record(&mut tx, stamp, event).await?;
            }
            inserted
        }
        None => {
            let deleted = sqlx::query(
                "DELETE FROM dataset_suspensions WHERE dataset_id = $1 AND hospital_id = $2",
            )
            .bind(dataset.0)
            .bind(hospital.0)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if deleted {
                record(
                    &mut tx,
                    stamp,
                    AuditEvent::DatasetResumed { dataset, hospital },
                )
                .await?;
            }
            deleted
        }
    };
    tx.commit().await?;
    Ok(changed)
}
