//! Certificates: signed documents that prove a dataset's registration (its approval) or a
//! final result (an entry's released score and rank at publication), checkable offline.
//!
//! # Format
//!
//! A certificate file is the JSON of [`CertificateDocument`], written exactly as
//! [`CertificateDocument::to_file_bytes`] writes it (pretty-printed, fields in declaration
//! order, one final line feed):
//!
//! - `body`: what is certified ([`CertificateBody`]);
//! - `body_sha256`: SHA-256 of the body's *canonical bytes* (compact JSON, fields in
//!   declaration order: [`canonical_body`]);
//! - `signature`: a C2SP signed note by the platform's key (the ledger's key, so users
//!   check it with the `ledger.pub` they already have), over the text
//!   `medarena certificate v1\n<serial>\nsha256 <body_sha256>\n`. The first line keeps
//!   the signature apart from checkpoint signatures by the same key: a checkpoint's first
//!   line is the log's origin, which cannot contain a space (see
//!   [`medarena_ledger::LogSigner::sign_note`]);
//! - `anchor`: once the `x.certificate_issued` ledger entry is written, its evidence code
//!   and (when the server has the ledger) the receipt, so inclusion is checkable offline.
//!
//! [`verify`] checks the signature, that the body hashes to what was signed, the anchoring
//! entry when a receipt is present, and finally that the file is byte for byte what
//! the platform wrote, so that any changed byte (even white space) is refused with a
//! message naming the check that failed.
//!
//! # What a certificate may contain
//!
//! A registration certificate goes to the dataset's hospitals and organizers only: the
//! providers, the manifests' versions and SHA-256, each contribution's content SHA-256, the
//! review's outcome, note, reviewer and date; no row count (a co-contributing hospital must
//! not learn another's rows, and organizers see counts only through the small-number
//! policy). A result certificate is public once issued (at publication): it holds only
//! what the published private leaderboard shows (the released, noisy private score, or
//! none when the board shows ranks only; the rank as shown there), the module's SHA-256
//! (already on the ledger) and, per dataset, the manifests' SHA-256 and the registration
//! certificate's body SHA-256, never a contribution's content hash (which would let anyone
//! test a guess of a file). Every body carries a random `nonce`, so the body digest that
//! goes on the public ledger is a commitment that reveals nothing about the body.

use medarena_ledger::{Event, LogSigner, Receipt, VerifierKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::ids::{AccountId, CompetitionId, ContributionId, DatasetId, OrgId, SubmissionId};

/// The `format` of a certificate file.
pub const CERTIFICATE_FORMAT: &str = "medarena-certificate/v1";
/// The first line of every certificate signature's signed text.
pub const NOTE_HEADER: &str = "medarena certificate v1";
/// The ledger entry kind that anchors a certificate.
pub const ANCHOR_KIND: &str = "x.certificate_issued";

/// A registration certificate or a result certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertificateKind {
    Registration,
    Result,
}

impl CertificateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateKind::Registration => "registration",
            CertificateKind::Result => "result",
        }
    }
}

impl std::fmt::Display for CertificateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The serial of a dataset's registration certificate: one per dataset (approval freezes
/// it), so issuing is idempotent.
pub fn registration_serial(dataset: DatasetId) -> String {
    format!("reg-{}", dataset.0)
}

/// The serial of a final entry's result certificate: one per entry (publication happens
/// once).
pub fn result_serial(competition: CompetitionId, submission: SubmissionId) -> String {
    format!("res-{}-{}", competition.0, submission.0)
}

/// What a serial may look like (path parameters are checked against it).
pub const SERIAL_PATTERN: &str = r"^(reg-[0-9]{1,18}|res-[0-9]{1,18}-[0-9]{1,18})$";

/// Whether `serial` is one [`registration_serial`] or [`result_serial`] could make.
pub fn is_serial(serial: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = serial.strip_prefix("reg-") {
        return digits(rest);
    }
    serial
        .strip_prefix("res-")
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(a, b)| digits(a) && digits(b))
}

/// The signed content of a certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateBody {
    /// `reg-<dataset>` or `res-<competition>-<submission>`.
    pub serial: String,
    /// The platform's ledger origin: the name of the key that signs.
    pub issuer: String,
    /// RFC 3339, UTC.
    pub issued_at: String,
    /// 32 random bytes (hex): makes the body's digest on the public ledger a commitment.
    pub nonce: String,
    pub subject: CertificateSubject,
}

impl CertificateBody {
    pub fn kind(&self) -> CertificateKind {
        match self.subject {
            CertificateSubject::Registration(_) => CertificateKind::Registration,
            CertificateSubject::Result(_) => CertificateKind::Result,
        }
    }
}

/// What is certified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CertificateSubject {
    Registration(RegistrationCertificate),
    Result(ResultCertificate),
}

/// A dataset's registration: who provided it, which files, and who approved it when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationCertificate {
    pub dataset: DatasetId,
    pub dataset_slug: String,
    pub dataset_title: String,
    /// The versions the contributions' manifests declare, sorted, without repeats.
    pub versions: Vec<String>,
    pub providers: Vec<Party>,
    /// The validated contributions, in id order.
    pub contributions: Vec<CertifiedContribution>,
    pub review: CertifiedReview,
}

/// A hospital or a team, by id and by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Party {
    pub org: OrgId,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertifiedContribution {
    pub contribution: ContributionId,
    pub hospital: OrgId,
    /// The version the contribution's manifest declares.
    pub manifest_version: Option<String>,
    /// SHA-256 (hex) of the manifest text sent with the upload.
    pub manifest_sha256: Option<String>,
    /// SHA-256 (hex) of the file as uploaded (the hospital checks its copy against it).
    pub content_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertifiedReview {
    /// `approved` (only an approval is certified).
    pub outcome: String,
    pub note: Option<String>,
    pub reviewer: AccountId,
    pub reviewer_name: String,
    /// RFC 3339, UTC.
    pub reviewed_at: String,
    /// The legality and compliance checklist, item by item, as the reviewer decided it.
    #[serde(default)]
    pub checklist: Vec<crate::model::ChecklistDecision>,
}

/// One final entry of a published competition, as the published private leaderboard
/// shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultCertificate {
    pub competition: CompetitionId,
    pub competition_slug: String,
    /// SHA-256 (hex) of the competition's bundle, as on the ledger.
    pub bundle_sha256: String,
    pub team: Party,
    pub submission: SubmissionId,
    /// SHA-256 (hex) of the WebAssembly module, as on the ledger.
    pub module_sha256: String,
    pub metric: String,
    pub higher_is_better: bool,
    /// The released (noisy) private score; `None` when the competition shows ranks only.
    pub released_score: Option<f64>,
    /// Half-width of the released score's 95% noise interval.
    pub noise_half_width_95: Option<f64>,
    /// 1 = best, as on the published private leaderboard.
    pub rank: u32,
    /// How many entries that leaderboard ranks.
    pub entries: u32,
    pub datasets: Vec<CertifiedDataset>,
    /// RFC 3339, UTC.
    pub published_at: String,
}

/// A dataset a result was computed on: its public digests only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertifiedDataset {
    pub dataset: DatasetId,
    pub slug: String,
    /// SHA-256 (hex) of each distinct manifest of its validated contributions, sorted.
    pub manifest_sha256: Vec<String>,
    /// The dataset's registration certificate (serial and body SHA-256), when issued.
    pub registration: Option<CertificateRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateRef {
    pub serial: String,
    pub body_sha256: String,
}

/// Where the certificate is on the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateAnchor {
    /// The evidence code of the `x.certificate_issued` entry.
    pub evidence_code: String,
    /// The entry's receipt (`medarena-ledger-receipt/v1`), when the server could read it.
    #[schemars(with = "Option<serde_json::Value>")]
    pub receipt: Option<Receipt>,
}

/// A certificate file (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateDocument {
    /// `medarena-certificate/v1`.
    pub format: String,
    pub body: CertificateBody,
    pub body_sha256: String,
    /// The signed note over `medarena certificate v1`, the serial and the body digest.
    pub signature: String,
    /// `None` until the anchoring ledger entry is written.
    pub anchor: Option<CertificateAnchor>,
}

/// Why a certificate could not be made or was refused.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("not a certificate file: {0}")]
    NotJson(String),
    #[error("unknown certificate format `{0}` (expected `{CERTIFICATE_FORMAT}`)")]
    Format(String),
    #[error(
        "the body does not hash to body_sha256 (it hashes to {actual}, the certificate says {stated}): the body was altered"
    )]
    BodyAltered { stated: String, actual: String },
    #[error("signature: {0}")]
    Signature(#[from] medarena_ledger::NoteError),
    #[error(
        "signature: the signed text is not this certificate's (expected serial {serial} and body sha256 {sha256}): the signature belongs to another document"
    )]
    SignatureForOtherDocument { serial: String, sha256: String },
    #[error("the certificate was issued by `{issuer}`, but the key is for `{key}`")]
    WrongIssuer { issuer: String, key: String },
    #[error("anchor: the receipt does not verify: {0}")]
    Receipt(#[from] medarena_ledger::VerifyError),
    #[error("anchor: {0}")]
    Anchor(String),
    #[error(
        "the file is not byte for byte the certificate as issued (first difference at byte {offset}): it was reformatted or altered"
    )]
    NotCanonical { offset: usize },
    #[error("signing: {0}")]
    Signing(String),
}

/// The canonical bytes of a body: compact JSON, fields in declaration order.
pub fn canonical_body(body: &CertificateBody) -> Vec<u8> {
    // Serializing plain structs of strings, integers and finite floats cannot fail.
    serde_json::to_vec(body).unwrap_or_default()
}

/// SHA-256 (hex) of the body's canonical bytes.
pub fn body_sha256(body: &CertificateBody) -> String {
    hex::encode(Sha256::digest(canonical_body(body)))
}

/// The text the signature is over.
pub fn signed_text(serial: &str, sha256: &str) -> String {
    format!("{NOTE_HEADER}\n{serial}\nsha256 {sha256}\n")
}

/// A fresh nonce for a body (32 random bytes, hex).
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    hex::encode(bytes)
}

/// Signs a body with the platform's key: a document without anchor.
pub fn sign(
    signer: &LogSigner,
    body: CertificateBody,
) -> Result<CertificateDocument, CertificateError> {
    if body.issuer != signer.origin() {
        return Err(CertificateError::WrongIssuer {
            issuer: body.issuer,
            key: signer.origin().to_owned(),
        });
    }
    let sha256 = body_sha256(&body);
    let signature = signer
        .sign_note(&signed_text(&body.serial, &sha256))
        .map_err(|err| CertificateError::Signing(err.to_string()))?;
    Ok(CertificateDocument {
        format: CERTIFICATE_FORMAT.to_owned(),
        body,
        body_sha256: sha256,
        signature,
        anchor: None,
    })
}

impl CertificateDocument {
    /// The file as the platform writes it (and [`verify`] requires it).
    pub fn to_file_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// What a successful check established.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub serial: String,
    pub kind: CertificateKind,
    pub body_sha256: String,
    /// The anchoring entry's index and evidence code, when a receipt was checked.
    pub anchored_at: Option<(u64, String)>,
    pub document: CertificateDocument,
}

/// Checks a certificate file offline with the platform's verifier key: signature, body
/// digest, the anchoring entry (from the embedded receipt, or `receipt` when given), and
/// that the file is byte for byte as issued.
pub fn verify(
    file: &[u8],
    key: &VerifierKey,
    receipt: Option<&Receipt>,
) -> Result<Verified, CertificateError> {
    let document: CertificateDocument =
        serde_json::from_slice(file).map_err(|err| CertificateError::NotJson(err.to_string()))?;
    if document.format != CERTIFICATE_FORMAT {
        return Err(CertificateError::Format(document.format));
    }
    let actual = body_sha256(&document.body);
    if actual != document.body_sha256 {
        return Err(CertificateError::BodyAltered {
            stated: document.body_sha256,
            actual,
        });
    }
    if document.body.issuer != key.name() {
        return Err(CertificateError::WrongIssuer {
            issuer: document.body.issuer,
            key: key.name().to_owned(),
        });
    }
    let signed = medarena_ledger::verify_note(&document.signature, key)?;
    if signed != signed_text(&document.body.serial, &actual) {
        return Err(CertificateError::SignatureForOtherDocument {
            serial: document.body.serial,
            sha256: actual,
        });
    }
    let embedded = document.anchor.as_ref().and_then(|a| a.receipt.as_ref());
    let anchored_at = match receipt.or(embedded) {
        Some(receipt) => Some(check_anchor(&document, receipt, key)?),
        None => None,
    };
    let canonical = document.to_file_bytes();
    if canonical != file {
        let offset = canonical
            .iter()
            .zip(file)
            .position(|(a, b)| a != b)
            .unwrap_or(canonical.len().min(file.len()));
        return Err(CertificateError::NotCanonical { offset });
    }
    Ok(Verified {
        serial: document.body.serial.clone(),
        kind: document.body.kind(),
        body_sha256: actual,
        anchored_at,
        document,
    })
}

/// The receipt verifies with `key`, its entry is `x.certificate_issued` for this serial and
/// body digest, and it is the entry the embedded evidence code names.
fn check_anchor(
    document: &CertificateDocument,
    receipt: &Receipt,
    key: &VerifierKey,
) -> Result<(u64, String), CertificateError> {
    let (entry, _) = receipt.verify(key)?;
    let evidence = receipt.evidence_code.to_string();
    if let Some(anchor) = &document.anchor {
        let stated = medarena_ledger::EvidenceCode::parse(&anchor.evidence_code)
            .map_err(|err| CertificateError::Anchor(format!("evidence code: {err}")))?;
        if stated != receipt.evidence_code {
            return Err(CertificateError::Anchor(format!(
                "the certificate names entry {stated} but the receipt is for {evidence}"
            )));
        }
    }
    let Event::Extension(extension) = &entry.event else {
        return Err(CertificateError::Anchor(format!(
            "the receipt's entry is `{}`, not `{ANCHOR_KIND}`",
            entry.event.kind()
        )));
    };
    if extension.kind() != ANCHOR_KIND {
        return Err(CertificateError::Anchor(format!(
            "the receipt's entry is `{}`, not `{ANCHOR_KIND}`",
            extension.kind()
        )));
    }
    let field = |name: &str| extension.fields().get(name).map(|v| v.as_str().to_owned());
    if field("certificate").as_deref() != Some(document.body.serial.as_str()) {
        return Err(CertificateError::Anchor(format!(
            "the ledger entry is about certificate {}, not {}",
            field("certificate").unwrap_or_default(),
            document.body.serial
        )));
    }
    if field("certificate_sha256").as_deref() != Some(document.body_sha256.as_str()) {
        return Err(CertificateError::Anchor(format!(
            "the ledger entry records body sha256 {}, not {}: the certificate is not the one issued",
            field("certificate_sha256").unwrap_or_default(),
            document.body_sha256
        )));
    }
    Ok((entry.index, evidence))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(issuer: &str) -> CertificateBody {
        CertificateBody {
            serial: "res-1-2".into(),
            issuer: issuer.into(),
            issued_at: "2026-12-06T09:00:00.000Z".into(),
            nonce: new_nonce(),
            subject: CertificateSubject::Result(ResultCertificate {
                competition: CompetitionId(1),
                competition_slug: "cardiac".into(),
                bundle_sha256: "ab".repeat(32),
                team: Party {
                    org: OrgId(3),
                    name: "Team A".into(),
                },
                submission: SubmissionId(2),
                module_sha256: "cd".repeat(32),
                metric: "auc".into(),
                higher_is_better: true,
                released_score: Some(0.734_512_345),
                noise_half_width_95: Some(0.05),
                rank: 1,
                entries: 2,
                datasets: vec![],
                published_at: "2026-12-06T09:00:00.000Z".into(),
            }),
        }
    }

    #[test]
    fn a_signed_certificate_verifies_and_any_changed_byte_is_refused() {
        let (signer, _) = LogSigner::generate("medarena.test/ledger").unwrap();
        let document = sign(&signer, body("medarena.test/ledger")).unwrap();
        let file = document.to_file_bytes();
        let verified = verify(&file, signer.verifier_key(), None).unwrap();
        assert_eq!(verified.serial, "res-1-2");
        assert_eq!(verified.kind, CertificateKind::Result);
        for offset in 0..file.len() {
            let mut changed = file.clone();
            changed[offset] ^= 0x01;
            assert!(
                verify(&changed, signer.verifier_key(), None).is_err(),
                "a change at byte {offset} was accepted"
            );
        }
        let (other, _) = LogSigner::generate("medarena.test/ledger").unwrap();
        assert!(matches!(
            verify(&file, other.verifier_key(), None),
            Err(CertificateError::Signature(_))
        ));
    }

    #[test]
    fn a_checkpoint_signature_is_not_a_certificate_signature() {
        let (signer, _) = LogSigner::generate("medarena.test/ledger").unwrap();
        let mut document = sign(&signer, body("medarena.test/ledger")).unwrap();
        document.signature = signer
            .sign(1, medarena_ledger::Hash::of_leaf(b"x"))
            .text()
            .to_owned();
        let file = document.to_file_bytes();
        assert!(matches!(
            verify(&file, signer.verifier_key(), None),
            Err(CertificateError::SignatureForOtherDocument { .. })
        ));
    }

    #[test]
    fn serials_are_recognised() {
        assert!(is_serial(&registration_serial(DatasetId(4))));
        assert!(is_serial(&result_serial(
            CompetitionId(1),
            SubmissionId(22)
        )));
        for bad in ["reg-", "res-1", "res-1-", "reg-1a", "x", "res--1"] {
            assert!(!is_serial(bad), "{bad}");
        }
    }
}
