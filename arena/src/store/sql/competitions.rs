//! Competitions, their closing and publication, and agreements.

use super::*;

#[async_trait]
impl CompetitionRepo for SqlStore {
    async fn insert_competition(
        &self,
        stamp: Stamp,
        new: &NewCompetition,
    ) -> StoreResult<Competition> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO competitions (slug, title, bundle_yaml, bundle_json, bundle_sha256, \
             created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COMPETITION_COLS}"
        ))
        .bind(&new.slug)
        .bind(&new.title)
        .bind(&new.bundle_yaml)
        .bind(&new.bundle_json)
        .bind(&new.bundle_sha256)
        .bind(stamp.actor.map(|a| a.0))
        .bind(stamp.at.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(unique_as("a competition with this slug"))?;
        let id: i64 = row.try_get("id")?;
        for (position, dataset) in new.datasets.iter().enumerate() {
            sqlx::query(
                "INSERT INTO competition_datasets (competition_id, dataset_id, position) \
                 VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(dataset.0)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        let competition = load_competition(&mut tx, &row).await?;
        record(
            &mut tx,
            stamp,
            AuditEvent::CompetitionCreated {
                competition: competition.id,
                slug: competition.slug.clone(),
                bundle_sha256: competition.bundle_sha256.clone(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(competition)
    }

    async fn competition(&self, id: CompetitionId) -> StoreResult<Option<Competition>> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query(&format!(
            "SELECT {COMPETITION_COLS} FROM competitions WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(row) => load_competition(&mut conn, &row).await.map(Some),
            None => Ok(None),
        }
    }

    async fn competitions(&self) -> StoreResult<Vec<Competition>> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(&format!(
            "SELECT {COMPETITION_COLS} FROM competitions ORDER BY id"
        ))
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(load_competition(&mut conn, row).await?);
        }
        Ok(out)
    }

    async fn close_competition(&self, stamp: Stamp, id: CompetitionId) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE competitions SET closed_at = $2 WHERE id = $1 AND closed_at IS NULL",
        )
        .bind(id.0)
        .bind(stamp.at.0)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        record(
            &mut tx,
            stamp,
            AuditEvent::CompetitionClosed { competition: id },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn publish_competition(
        &self,
        stamp: Stamp,
        id: CompetitionId,
        releases: &[FinalRelease],
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE competitions SET published_at = $2 \
             WHERE id = $1 AND closed_at IS NOT NULL AND published_at IS NULL",
        )
        .bind(id.0)
        .bind(stamp.at.0)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        for release in releases {
            sqlx::query(
                "UPDATE submissions SET released_private_score = $2 \
                 WHERE id = $1 AND competition_id = $3",
            )
            .bind(release.submission.0)
            .bind(release.released_private_score)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
            record(
                &mut tx,
                stamp,
                AuditEvent::FinalScoreReleased {
                    competition: id,
                    team: release.team,
                    submission: release.submission,
                    released_private_score: release.released_private_score,
                },
            )
            .await?;
        }
        for release in releases {
            for site in &release.site_scores {
                sqlx::query(
                    "INSERT INTO site_score_releases (submission_id, hospital_id, \
                     released_score, epsilon) VALUES ($1, $2, $3, $4)",
                )
                .bind(release.submission.0)
                .bind(site.hospital.0)
                .bind(site.released_score)
                .bind(site.epsilon)
                .execute(&mut *tx)
                .await?;
                record(
                    &mut tx,
                    stamp,
                    AuditEvent::SiteScoreReleased {
                        competition: id,
                        submission: release.submission,
                        hospital: site.hospital,
                        epsilon: site.epsilon,
                    },
                )
                .await?;
            }
        }
        record(
            &mut tx,
            stamp,
            AuditEvent::CompetitionPublished { competition: id },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn accept_agreement(
        &self,
        stamp: Stamp,
        acceptance: &AgreementAcceptance,
    ) -> StoreResult<AgreementAcceptance> {
        let mut tx = self.write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO agreement_acceptances (competition_id, team_id, accepted_by, \
             agreement_sha256, accepted_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (competition_id, team_id) DO NOTHING",
        )
        .bind(acceptance.competition.0)
        .bind(acceptance.team.0)
        .bind(acceptance.accepted_by.0)
        .bind(&acceptance.agreement_sha256)
        .bind(acceptance.accepted_at.0)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 1 {
            record(
                &mut tx,
                stamp,
                AuditEvent::AgreementAccepted {
                    competition: acceptance.competition,
                    team: acceptance.team,
                    account: acceptance.accepted_by,
                    agreement_sha256: acceptance.agreement_sha256.clone(),
                },
            )
            .await?;
        }
        tx.commit().await?;
        self.agreement_acceptance(acceptance.competition, acceptance.team)
            .await?
            .ok_or_else(|| StoreError::Missing("agreement acceptance".to_owned()))
    }

    async fn agreement_acceptance(
        &self,
        competition: CompetitionId,
        team: OrgId,
    ) -> StoreResult<Option<AgreementAcceptance>> {
        let row = sqlx::query(
            "SELECT competition_id, team_id, accepted_by, agreement_sha256, accepted_at \
             FROM agreement_acceptances WHERE competition_id = $1 AND team_id = $2",
        )
        .bind(competition.0)
        .bind(team.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(AgreementAcceptance {
                competition: CompetitionId(row.try_get("competition_id")?),
                team: OrgId(row.try_get("team_id")?),
                accepted_by: AccountId(row.try_get("accepted_by")?),
                agreement_sha256: row.try_get("agreement_sha256")?,
                accepted_at: ts(&row, "accepted_at")?,
            })
        })
        .transpose()
    }
}
