//! Leaderboards: public (released public scores, best run per team) and private (exact
//! private scores of each team's final runs, revealed when the organizer closes the
//! competition), Kaggle-style.
//!
//! Ranking is competition ranking ("1224"): equal scores share a rank; among them the
//! earlier submission is listed first.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::metrics::Direction;

/// One scored run. Scores are `None` when the run failed or has not been scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunScores {
    pub run_id: String,
    pub team: String,
    /// Any increasing submission clock (Unix seconds, or a sequence number).
    pub submitted_at: u64,
    /// The public score as released to the team (noisy / Ladder), or exact for organizers.
    pub public: Option<f64>,
    /// The exact private score, computed at once, revealed only at close.
    pub private: Option<f64>,
    /// The team marked this run as one of its finals.
    pub selected_as_final: bool,
}

/// How each team's final runs are chosen for the private leaderboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FinalSelection {
    /// The team's `per_team` best runs by public score.
    BestPublic { per_team: usize },
    /// The runs the team selected (the earliest `max_per_team` of them); a team that
    /// selected none gets its best public runs, as on Kaggle.
    TeamSelected { max_per_team: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Viewer {
    Organizer,
    Team,
    Public,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LeaderboardError {
    #[error("the private leaderboard is sealed until the organizer closes the competition")]
    Sealed,
    #[error("run `{run_id}` has a non-finite {board} score")]
    NotFinite { run_id: String, board: &'static str },
}

/// One line of a leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standing {
    /// 1-based competition rank (ties share it).
    pub rank: usize,
    pub team: String,
    pub run_id: String,
    pub score: f64,
    pub submitted_at: u64,
}

fn check_finite(
    runs: &[RunScores],
    board: &'static str,
    score: fn(&RunScores) -> Option<f64>,
) -> Result<(), LeaderboardError> {
    match runs
        .iter()
        .find(|r| score(r).is_some_and(|s| !s.is_finite()))
    {
        Some(run) => Err(LeaderboardError::NotFinite {
            run_id: run.run_id.clone(),
            board,
        }),
        None => Ok(()),
    }
}

/// Sorts best first (ties: earlier first) and assigns competition ranks.
pub fn rank(mut entries: Vec<Standing>, direction: Direction) -> Vec<Standing> {
    entries.sort_by(|a, b| {
        direction
            .cmp_best_first(a.score, b.score)
            .then(a.submitted_at.cmp(&b.submitted_at))
            .then(a.run_id.cmp(&b.run_id))
    });
    for i in 0..entries.len() {
        entries[i].rank = if i > 0 && entries[i].score == entries[i - 1].score {
            entries[i - 1].rank
        } else {
            i + 1
        };
    }
    entries
}

/// The best run of each team under `score`, as an unranked standing.
fn best_per_team<'a>(
    runs: impl Iterator<Item = &'a RunScores>,
    direction: Direction,
    score: impl Fn(&RunScores) -> Option<f64>,
) -> Vec<Standing> {
    let mut best: BTreeMap<&str, Standing> = BTreeMap::new();
    for run in runs {
        let Some(value) = score(run) else { continue };
        let candidate = Standing {
            rank: 0,
            team: run.team.clone(),
            run_id: run.run_id.clone(),
            score: value,
            submitted_at: run.submitted_at,
        };
        let replaces = match best.get(run.team.as_str()) {
            None => true,
            Some(current) => {
                direction.is_better(value, current.score)
                    || (value == current.score && run.submitted_at < current.submitted_at)
            }
        };
        if replaces {
            best.insert(&run.team, candidate);
        }
    }
    best.into_values().collect()
}

/// The public leaderboard: each team's best public score.
pub fn public_leaderboard(
    runs: &[RunScores],
    direction: Direction,
) -> Result<Vec<Standing>, LeaderboardError> {
    check_finite(runs, "public", |r| r.public)?;
    Ok(rank(
        best_per_team(runs.iter(), direction, |r| r.public),
        direction,
    ))
}

/// The runs that count as each team's finals under `selection`.
pub fn final_runs<'a>(
    runs: &'a [RunScores],
    direction: Direction,
    selection: FinalSelection,
) -> Vec<&'a RunScores> {
    let mut by_team: BTreeMap<&str, Vec<&RunScores>> = BTreeMap::new();
    for run in runs {
        by_team.entry(&run.team).or_default().push(run);
    }
    let mut finals = Vec::new();
    for (_, mut team_runs) in by_team {
        let best_public = |runs: &mut Vec<&'a RunScores>, n: usize| -> Vec<&'a RunScores> {
            runs.retain(|r| r.public.is_some());
            runs.sort_by(|a, b| {
                direction
                    .cmp_best_first(a.public.unwrap_or(f64::NAN), b.public.unwrap_or(f64::NAN))
                    .then(a.submitted_at.cmp(&b.submitted_at))
            });
            runs.iter().take(n).copied().collect()
        };
        match selection {
            FinalSelection::BestPublic { per_team } => {
                finals.extend(best_public(&mut team_runs, per_team))
            }
            FinalSelection::TeamSelected { max_per_team } => {
                let mut selected: Vec<&RunScores> = team_runs
                    .iter()
                    .copied()
                    .filter(|r| r.selected_as_final)
                    .collect();
                if selected.is_empty() {
                    finals.extend(best_public(&mut team_runs, max_per_team));
                } else {
                    selected.sort_by_key(|r| r.submitted_at);
                    finals.extend(selected.into_iter().take(max_per_team));
                }
            }
        }
    }
    finals
}

/// The private leaderboard: each team's best private score among its final runs. Sealed
/// for everyone but organizers until the competition is closed.
pub fn private_leaderboard(
    runs: &[RunScores],
    direction: Direction,
    selection: FinalSelection,
    phase: Phase,
    viewer: Viewer,
) -> Result<Vec<Standing>, LeaderboardError> {
    if phase == Phase::Open && viewer != Viewer::Organizer {
        return Err(LeaderboardError::Sealed);
    }
    check_finite(runs, "private", |r| r.private)?;
    check_finite(runs, "public", |r| r.public)?;
    let finals = final_runs(runs, direction, selection);
    Ok(rank(
        best_per_team(finals.into_iter(), direction, |r| r.private),
        direction,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, team: &str, at: u64, public: f64, private: f64, selected: bool) -> RunScores {
        RunScores {
            run_id: id.into(),
            team: team.into(),
            submitted_at: at,
            public: Some(public),
            private: Some(private),
            selected_as_final: selected,
        }
    }

    fn runs() -> Vec<RunScores> {
        vec![
            run("a1", "alpha", 1, 0.80, 0.70, false),
            run("a2", "alpha", 2, 0.85, 0.60, false),
            run("a3", "alpha", 3, 0.75, 0.90, true),
            run("b1", "beta", 4, 0.85, 0.80, false),
            run("c1", "gamma", 5, 0.70, 0.80, false),
            RunScores {
                public: None,
                private: None,
                ..run("c2", "gamma", 6, 0.0, 0.0, false)
            },
        ]
    }

    #[test]
    fn public_board_takes_best_per_team_and_shares_ranks() {
        let board = public_leaderboard(&runs(), Direction::HigherIsBetter).unwrap();
        let lines: Vec<(usize, &str, f64)> = board
            .iter()
            .map(|s| (s.rank, s.run_id.as_str(), s.score))
            .collect();
        // alpha and beta tie at 0.85; alpha submitted earlier, listed first.
        assert_eq!(
            lines,
            vec![(1, "a2", 0.85), (1, "b1", 0.85), (3, "c1", 0.70)]
        );
    }

    #[test]
    fn private_board_is_sealed_until_close_except_for_organizers() {
        let selection = FinalSelection::TeamSelected { max_per_team: 2 };
        assert_eq!(
            private_leaderboard(
                &runs(),
                Direction::HigherIsBetter,
                selection,
                Phase::Open,
                Viewer::Team
            ),
            Err(LeaderboardError::Sealed)
        );
        assert!(
            private_leaderboard(
                &runs(),
                Direction::HigherIsBetter,
                selection,
                Phase::Open,
                Viewer::Organizer
            )
            .is_ok()
        );
    }

    #[test]
    fn team_selected_finals_decide_the_private_board() {
        let board = private_leaderboard(
            &runs(),
            Direction::HigherIsBetter,
            FinalSelection::TeamSelected { max_per_team: 2 },
            Phase::Closed,
            Viewer::Public,
        )
        .unwrap();
        let lines: Vec<(usize, &str)> = board.iter().map(|s| (s.rank, s.run_id.as_str())).collect();
        // alpha selected a3 (private 0.90); beta and gamma fall back to best public.
        assert_eq!(lines, vec![(1, "a3"), (2, "b1"), (2, "c1")]);

        let best_public = private_leaderboard(
            &runs(),
            Direction::HigherIsBetter,
            FinalSelection::BestPublic { per_team: 1 },
            Phase::Closed,
            Viewer::Public,
        )
        .unwrap();
        // alpha's best public run a2 has a private score of only 0.60: shake-up.
        assert_eq!(best_public.last().unwrap().run_id, "a2");
    }

    #[test]
    fn lower_is_better_boards_and_bad_scores() {
        let mut losses = runs();
        losses.truncate(5);
        let board = public_leaderboard(&losses, Direction::LowerIsBetter).unwrap();
        assert_eq!(board[0].run_id, "c1");
        losses[0].public = Some(f64::NAN);
        assert!(matches!(
            public_leaderboard(&losses, Direction::LowerIsBetter),
            Err(LeaderboardError::NotFinite { .. })
        ));
    }
}
