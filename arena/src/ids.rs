//! Typed identifiers. Every row id is an `i64` in SQL; the newtypes keep a team id from being
//! passed where a dataset id is expected.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!($prefix, ":{}"), self.0)
            }
        }
    };
}

id_type!(
    /// An account (one person or service login).
    AccountId,
    "account"
);
id_type!(
    /// An organization: a hospital or a team.
    OrgId,
    "org"
);
id_type!(
    /// A browser session or an API token.
    CredentialId,
    "credential"
);
id_type!(
    /// A competition created from a bundle.
    CompetitionId,
    "competition"
);
id_type!(
    /// A dataset, possibly contributed to by several hospitals.
    DatasetId,
    "dataset"
);
id_type!(
    /// One hospital's upload to a dataset.
    ContributionId,
    "contribution"
);
id_type!(
    /// A team's WebAssembly submission to a competition.
    SubmissionId,
    "submission"
);
id_type!(
    /// One queued run of a submission (dummy data or real data).
    JobId,
    "job"
);
id_type!(
    /// One event in the audit outbox.
    AuditEventId,
    "event"
);
id_type!(
    /// One hospital's differentially private synthetic release of its rows of a dataset.
    SyntheticReleaseId,
    "synthetic"
);
id_type!(
    /// A three-party transaction contract (hospitals, a team or every admitted team, the
    /// platform) over a competition's use of datasets.
    ContractId,
    "contract"
);
