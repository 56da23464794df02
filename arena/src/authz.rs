//! Who may do what: the role matrix of DESIGN.md, written once.
//!
//! Every [`crate::Arena`] operation calls [`authorize`] with the [`Actor`] making the request,
//! the [`Action`] and the [`Resource`] it touches (with the ownership facts needed to
//! decide: which team owns a submission, which hospitals contributed to a dataset). Web
//! handlers therefore stay thin: they authenticate, call the arena, and map the error.
//!
//! Business preconditions that are not about *who* (a dataset must be approved, the phase
//! must be open, the agreement accepted) are checked by the operations themselves.

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, OrgId};
use crate::model::{AdmissionState, Role, Tier};

/// Who is asking. Built by [`crate::Arena::authenticate`] from a session or API token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Actor {
    /// No credential: may read public pages and the ledger.
    Anonymous,
    Account(Principal),
}

/// An authenticated account and the organization it belongs to, as of authentication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Principal {
    pub account: AccountId,
    pub role: Role,
    pub membership: Option<Membership>,
}

/// An account's organization (a hospital for hospital accounts, a team for team members).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Membership {
    pub org: OrgId,
    pub admission: AdmissionState,
    pub tier: Option<Tier>,
}

impl Actor {
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Actor::Anonymous => None,
            Actor::Account(principal) => Some(principal),
        }
    }

    pub fn account(&self) -> Option<AccountId> {
        self.principal().map(|p| p.account)
    }

    pub fn role(&self) -> Option<Role> {
        self.principal().map(|p| p.role)
    }

    /// The actor's organization when it has been approved.
    pub fn approved_org(&self) -> Option<&Membership> {
        self.principal()
            .and_then(|p| p.membership.as_ref())
            .filter(|m| m.admission == AdmissionState::Approved)
    }

    fn has_role(&self, role: Role) -> bool {
        self.role() == Some(role)
    }

    fn member_of(&self, role: Role, org: OrgId) -> bool {
        self.principal()
            .is_some_and(|p| p.role == role && p.membership.as_ref().is_some_and(|m| m.org == org))
    }

    fn approved_member_of(&self, role: Role, org: OrgId) -> bool {
        self.has_role(role) && self.approved_org().is_some_and(|m| m.org == org)
    }

    fn approved_as(&self, role: Role) -> bool {
        self.has_role(role) && self.approved_org().is_some()
    }
}

/// Everything an actor can attempt. Each action expects one kind of [`Resource`]; any other
/// pairing is denied.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Competition list and pages, public leaderboards, the dataset catalog (Platform,
    /// Competition, Dataset).
    ViewPublic,
    /// Ledger checkpoints, receipts and proofs (Ledger).
    ViewLedger,
    /// The audit trail of events (Platform).
    ViewAuditTrail,
    /// Create organizer and auditor accounts, disable accounts (Platform).
    ManageAccounts,
    /// Create a competition from a bundle (Platform).
    CreateCompetition,
    /// Close and publish a competition (Competition).
    ManageCompetition,
    /// Exact scores, confidence intervals, per-hospital breakdowns (Competition).
    ViewExactScores,
    /// The private leaderboard (Competition): organizers always, everyone once published.
    ViewPrivateLeaderboard,
    /// Apply to join as a hospital or a team (Platform).
    ApplyForAdmission,
    /// List and decide applications (Platform).
    ReviewAdmissions,
    /// A team's members and details (Team).
    ViewTeam,
    /// Add members to a team (Team).
    ManageTeam,
    /// Open a new dataset (Platform).
    CreateDataset,
    /// Upload a contribution to a dataset (Dataset).
    ContributeData,
    /// A contribution's validation report (Contribution).
    ViewContribution,
    /// Which runs used a dataset and the privacy budget they spent (Dataset).
    ViewDatasetUsage,
    /// The released per-hospital scores of a competition's final entries (Dataset: the
    /// competition's): organizers all, a contributing hospital its own.
    ViewSiteScores,
    /// Set a dataset's privacy terms (minimum level, ε caps) for one's own hospital
    /// (Dataset): its contributing hospitals, nobody else.
    SetDatasetPrivacy,
    /// Measure, publish, discard or withdraw a synthetic release of the hospital's own
    /// rows (Dataset; the service checks the release is the actor's hospital's).
    ManageSyntheticData,
    /// Suspend or resume the use of a dataset in real-data runs, for one's own hospital
    /// (Dataset): its contributing hospitals, nobody else.
    SuspendDatasetUse,
    /// Approve or reject a dataset (Dataset).
    ReviewDataset,
    /// Development data: dummy rows from the spec, or rows drawn from published synthetic
    /// releases, and the manifest (Dataset).
    DownloadDummyData,
    /// Real rows. Nobody, ever: real data only leaves through the privacy layer.
    DownloadRawData,
    /// Accept a competition's data-use agreement on behalf of a team (Team).
    AcceptAgreement,
    /// Submit a module for a team (Team).
    Submit,
    /// Request a differentially private aggregate (Team).
    RequestDpAggregate,
    /// A submission's status and released scores (Submission).
    ViewSubmission,
    /// A submission's WebAssembly module (Submission): only its own team.
    DownloadSubmissionModule,
    /// A team's privacy budget (Team).
    ViewBudget,
    /// List or revoke a session or API token (Credential).
    ManageCredential,
    /// The operators' Prometheus metrics (Platform): queue states and timings follow real
    /// runs, so organizers only (or the operators' metrics token, checked by the web layer).
    ViewMetrics,
    /// Propose a contract between hospitals, teams and the platform (Platform).
    ProposeContract,
    /// A contract, its acceptances and its history (Contract): organizers, auditors, its
    /// hospitals, its team (an open offer: every admitted team).
    ViewContract,
    /// Accept a contract as one of its parties (Contract): the platform (organizers), an
    /// approved member of a party hospital, of the named team (an open offer: of any team
    /// admitted to real data), the named auditor.
    AcceptContract,
    /// Suspend or resume a contract (Contract): organizers and its hospitals.
    SuspendContract,
    /// End a contract for good (Contract): organizers, its hospitals, its named team.
    TerminateContract,
    /// A party's statement of metered use (Platform): organizers and auditors all lines,
    /// approved hospitals and teams their own.
    ViewStatement,
}

impl Action {
    pub const ALL: &'static [Action] = &[
        Action::ViewPublic,
        Action::ViewLedger,
        Action::ViewAuditTrail,
        Action::ManageAccounts,
        Action::CreateCompetition,
        Action::ManageCompetition,
        Action::ViewExactScores,
        Action::ViewPrivateLeaderboard,
        Action::ApplyForAdmission,
        Action::ReviewAdmissions,
        Action::ViewTeam,
        Action::ManageTeam,
        Action::CreateDataset,
        Action::ContributeData,
        Action::ViewContribution,
        Action::ViewDatasetUsage,
        Action::ViewSiteScores,
        Action::SetDatasetPrivacy,
        Action::ManageSyntheticData,
        Action::SuspendDatasetUse,
        Action::ReviewDataset,
        Action::DownloadDummyData,
        Action::DownloadRawData,
        Action::AcceptAgreement,
        Action::Submit,
        Action::RequestDpAggregate,
        Action::ViewSubmission,
        Action::DownloadSubmissionModule,
        Action::ViewBudget,
        Action::ManageCredential,
        Action::ViewMetrics,
        Action::ProposeContract,
        Action::ViewContract,
        Action::AcceptContract,
        Action::SuspendContract,
        Action::TerminateContract,
        Action::ViewStatement,
    ];
}

/// What an action touches, with the ownership facts the decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    Platform,
    Ledger,
    Competition {
        published: bool,
    },
    Team(OrgId),
    Dataset {
        contributors: &'a [OrgId],
    },
    Contribution {
        hospital: OrgId,
    },
    Submission {
        team: OrgId,
    },
    Credential {
        owner: AccountId,
    },
    /// A contract's parties (its hospitals, its named team or `None` for an open offer, its
    /// named auditor).
    Contract {
        hospitals: &'a [OrgId],
        team: Option<OrgId>,
        auditor: Option<AccountId>,
    },
}

/// Why an action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// No (valid) credential was presented and the action needs one.
    #[error("sign in to {0:?}")]
    Unauthenticated(Action),
    #[error("not allowed to {0:?} this resource")]
    Forbidden(Action),
}

/// The role matrix. Returns `Ok(())` when `actor` may perform `action` on `resource`.
pub fn authorize(actor: &Actor, action: Action, resource: Resource<'_>) -> Result<(), Denial> {
    if permits(actor, action, resource) {
        return Ok(());
    }
    if matches!(actor, Actor::Anonymous) && action != Action::DownloadRawData {
        Err(Denial::Unauthenticated(action))
    } else {
        Err(Denial::Forbidden(action))
    }
}

fn permits(actor: &Actor, action: Action, resource: Resource<'_>) -> bool {
    use Action as A;
    use Resource as R;
    use Role::{Auditor, Hospital, Organizer, TeamMember};
    let organizer = actor.has_role(Organizer);
    match (action, resource) {
        (A::ViewPublic, R::Platform | R::Competition { .. } | R::Dataset { .. }) => true,
        (A::ViewLedger, R::Ledger) => true,
        (A::ViewAuditTrail, R::Platform) => organizer || actor.has_role(Auditor),
        (
            A::ManageAccounts | A::CreateCompetition | A::ReviewAdmissions | A::ViewMetrics,
            R::Platform,
        ) => organizer,
        (A::ManageCompetition | A::ViewExactScores, R::Competition { .. }) => organizer,
        (A::ViewPrivateLeaderboard, R::Competition { published }) => organizer || published,
        (A::ApplyForAdmission, R::Platform) => actor
            .principal()
            .is_some_and(|p| matches!(p.role, Hospital | TeamMember) && p.membership.is_none()),
        (A::ViewTeam, R::Team(team)) => organizer || actor.member_of(TeamMember, team),
        (A::ManageTeam, R::Team(team)) => {
            organizer
                || (actor.member_of(TeamMember, team)
                    && actor
                        .principal()
                        .and_then(|p| p.membership.as_ref())
                        .is_some_and(|m| m.admission != AdmissionState::Rejected))
        }
        (A::CreateDataset, R::Platform) => organizer || actor.approved_as(Hospital),
        (A::ContributeData, R::Dataset { .. }) => actor.approved_as(Hospital),
        (A::ViewContribution, R::Contribution { hospital }) => {
            organizer || actor.member_of(Hospital, hospital)
        }
        (A::ViewDatasetUsage | A::ViewSiteScores, R::Dataset { contributors }) => {
            organizer || contributors.iter().any(|h| actor.member_of(Hospital, *h))
        }
        (
            A::SetDatasetPrivacy | A::ManageSyntheticData | A::SuspendDatasetUse,
            R::Dataset { contributors },
        ) => contributors
            .iter()
            .any(|h| actor.approved_member_of(Hospital, *h)),
        (A::ReviewDataset, R::Dataset { .. }) => organizer,
        (A::DownloadDummyData, R::Dataset { .. }) => {
            organizer || actor.approved_as(TeamMember) || actor.approved_as(Hospital)
        }
        (A::DownloadRawData, _) => false,
        (A::AcceptAgreement | A::Submit, R::Team(team)) => {
            actor.approved_member_of(TeamMember, team)
        }
        (A::RequestDpAggregate, R::Team(team)) => {
            actor.approved_member_of(TeamMember, team)
                && actor
                    .approved_org()
                    .and_then(|m| m.tier)
                    .is_some_and(|tier| tier >= Tier::DpAggregates)
        }
        (A::ViewSubmission, R::Submission { team }) => {
            organizer || actor.member_of(TeamMember, team)
        }
        (A::DownloadSubmissionModule, R::Submission { team }) => actor.member_of(TeamMember, team),
        (A::ViewBudget, R::Team(team)) => organizer || actor.member_of(TeamMember, team),
        (A::ManageCredential, R::Credential { owner }) => {
            organizer || actor.account() == Some(owner)
        }
        (A::ProposeContract, R::Platform) => organizer,
        (
            A::ViewContract,
            R::Contract {
                hospitals, team, ..
            },
        ) => {
            organizer
                || actor.has_role(Auditor)
                || hospitals.iter().any(|h| actor.member_of(Hospital, *h))
                || match team {
                    Some(team) => actor.member_of(TeamMember, team),
                    None => actor.approved_as(TeamMember),
                }
        }
        (
            A::AcceptContract,
            R::Contract {
                hospitals,
                team,
                auditor,
            },
        ) => {
            organizer
                || hospitals
                    .iter()
                    .any(|h| actor.approved_member_of(Hospital, *h))
                || (actor.has_role(Auditor) && auditor.is_some() && actor.account() == auditor)
                || (match team {
                    Some(team) => actor.approved_member_of(TeamMember, team),
                    None => actor.approved_as(TeamMember),
                } && actor
                    .approved_org()
                    .and_then(|m| m.tier)
                    .is_some_and(|tier| tier >= Tier::RealData))
        }
        (A::SuspendContract, R::Contract { hospitals, .. }) => {
            organizer
                || hospitals
                    .iter()
                    .any(|h| actor.approved_member_of(Hospital, *h))
        }
        (
            A::TerminateContract,
            R::Contract {
                hospitals, team, ..
            },
        ) => {
            organizer
                || hospitals
                    .iter()
                    .any(|h| actor.approved_member_of(Hospital, *h))
                || team.is_some_and(|team| actor.approved_member_of(TeamMember, team))
        }
        (A::ViewStatement, R::Platform) => {
            organizer
                || actor.has_role(Auditor)
                || actor.approved_as(Hospital)
                || actor.approved_as(TeamMember)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_gets_unauthenticated_not_forbidden() {
        assert_eq!(
            authorize(&Actor::Anonymous, Action::Submit, Resource::Team(OrgId(1))),
            Err(Denial::Unauthenticated(Action::Submit))
        );
        assert_eq!(
            authorize(
                &Actor::Anonymous,
                Action::DownloadRawData,
                Resource::Dataset { contributors: &[] }
            ),
            Err(Denial::Forbidden(Action::DownloadRawData))
        );
        assert!(authorize(&Actor::Anonymous, Action::ViewLedger, Resource::Ledger).is_ok());
    }

    #[test]
    fn mismatched_resources_are_denied() {
        let organizer = Actor::Account(Principal {
            account: AccountId(1),
            role: Role::Organizer,
            membership: None,
        });
        assert!(
            authorize(
                &organizer,
                Action::ReviewDataset,
                Resource::Dataset { contributors: &[] }
            )
            .is_ok()
        );
        assert!(authorize(&organizer, Action::ReviewDataset, Resource::Platform).is_err());
        assert!(authorize(&organizer, Action::ViewLedger, Resource::Platform).is_err());
    }
}
