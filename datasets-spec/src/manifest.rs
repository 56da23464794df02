//! The dataset manifest: a Frictionless Data Package with one tabular resource, whose Table
//! Schema fields carry medarena's extensions (role, privacy class, bounds, categories, date
//! precision) and whose package carries provider, provenance, permitted uses, license,
//! version and content hash. `SPEC.md` is the prose form of these types and
//! `manifest.schema.json` their JSON Schema.

use std::collections::HashSet;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dates::PartialDate;

/// The profile string a manifest may carry in `profile`; a newer incompatible format gets a
/// new number.
pub const PROFILE: &str = "medarena-dataset/1";

/// A dataset manifest, written by a hospital, read by the platform and published to teams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    /// Format identifier; `medarena-dataset/1` when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Machine name: lower-case letters, digits, `-`, `_` and `.` (Frictionless `name`).
    pub name: String,
    /// Human title.
    pub title: String,
    /// What the table holds and how it was assembled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Version of this dataset (semantic versioning recommended); a re-upload with changes
    /// gets a new version.
    pub version: String,
    /// The hospital (data provider) that publishes the dataset.
    pub provider: Provider,
    /// Where the data comes from and under which approvals.
    pub provenance: Provenance,
    /// The data-use terms a team must accept before it may run code on the data.
    pub permitted_uses: PermittedUses,
    /// Licenses (Frictionless `licenses`); at least one.
    pub licenses: Vec<License>,
    /// Content hash of the data file this manifest was published with, `sha256:<64 hex>`
    /// (Frictionless resource `hash`). Leave it out when several sites share the manifest:
    /// the platform records each upload's own hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// The Table Schema of the data file(s).
    pub schema: TableSchema,
}

/// The data provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Provider {
    /// Name of the hospital or institution.
    pub name: String,
    /// A stable identifier of the institution (e.g. a registry code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// An institutional contact (a role address, never a patient's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

/// Where the data comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Provenance {
    /// The period in which the records were collected.
    pub collection_period: Period,
    /// Reference of the ethics committee / IRB approval.
    pub ethics_approval: String,
    /// Legal basis of the processing (e.g. consent, public interest research exemption).
    pub legal_basis: String,
    /// How patients consented, or why consent was waived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<String>,
    /// The de-identification applied before upload.
    pub deidentification: Deidentification,
}

/// A closed period; each end is `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Period {
    /// First month (or day, or year) covered.
    pub start: String,
    /// Last month (or day, or year) covered.
    pub end: String,
}

/// The de-identification method applied by the provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deidentification {
    /// The method or standard followed.
    pub method: DeidentificationMethod,
    /// What was removed, generalised or perturbed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// De-identification standards the platform knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeidentificationMethod {
    /// HIPAA Safe Harbor (45 CFR 164.514(b)(2)): the 18 identifiers removed.
    SafeHarbor,
    /// HIPAA Expert Determination (45 CFR 164.514(b)(1)).
    ExpertDetermination,
    /// GB/T 37964-2019, Guide for de-identifying personal information (China).
    GbT37964,
    /// Anything else; describe it in `description`.
    Other,
}

/// The terms a team accepts; shown verbatim and recorded on the ledger at acceptance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PermittedUses {
    /// Purposes the data may be used for (e.g. "model development within competition X").
    pub purposes: Vec<String>,
    /// Uses that are explicitly forbidden (e.g. "re-identification").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prohibited: Vec<String>,
    /// The full text of the data-use agreement.
    pub terms: String,
}

/// A license (Frictionless `licenses[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct License {
    /// SPDX identifier or a short name such as `proprietary`.
    pub name: String,
    /// Human title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Where the license text is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A Frictionless Table Schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TableSchema {
    /// The columns, in file order.
    pub fields: Vec<Field>,
    /// Cell texts that mean "missing" (Frictionless `missingValues`, default `[""]`).
    #[serde(default = "default_missing_values")]
    pub missing_values: Vec<String>,
}

fn default_missing_values() -> Vec<String> {
    vec![String::new()]
}

/// One column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Field {
    /// Column name, exactly as in the file header.
    pub name: String,
    /// Human title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Meaning, unit and how it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The value type (Frictionless `type`).
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// What the column is for in a competition; `feature` when left out.
    #[serde(default)]
    pub role: Role,
    /// The privacy class as declared; left out, the validation infers quasi-identifiers
    /// from the header and type ([`Manifest::inferred_quasi_identifiers`]) and reads the
    /// rest as `none`. Read it with [`Field::privacy`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<PrivacyClass>,
    /// Frictionless constraints: required, unique, minimum, maximum.
    #[serde(default, skip_serializing_if = "Constraints::is_empty")]
    pub constraints: Constraints,
    /// Allowed values of a categorical `string` or `integer` column (Frictionless v2
    /// `categories`). A bare value or `{value, label, frequency}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<Category>>,
    /// Precision of a `date` column: the finest part a value may carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<DatePrecision>,
    /// Unit of a numeric column (UCUM recommended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Texts read as `true` in a `boolean` column (default `true`, `True`, `TRUE`, `1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub true_values: Option<Vec<String>>,
    /// Texts read as `false` in a `boolean` column (default `false`, `False`, `FALSE`, `0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub false_values: Option<Vec<String>>,
}

/// Value types (a subset of Frictionless types; categories are `string`/`integer` with
/// `categories`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// A real number, read as 64-bit float.
    Number,
    /// A whole number, read as 64-bit signed integer.
    Integer,
    /// `true`/`false` per `trueValues`/`falseValues`.
    Boolean,
    /// Text; only for categories, row ids and sites (free text is refused by the PHI scan).
    String,
    /// An ISO 8601 calendar date `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, no finer than `precision`.
    Date,
}

/// What a column is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An input a model may use.
    #[default]
    Feature,
    /// A target to predict (hidden from submissions on test rows).
    Label,
    /// Survival time of a time-to-event target (pairs with one `event` column).
    TimeToEvent,
    /// Event indicator of a time-to-event target (1/true = event observed).
    Event,
    /// A pseudonymous row identifier, unique per site; never a real record number.
    RowId,
    /// The contributing site (hospital) or another grouping for stratification.
    Site,
    /// Present in the file but never given to submissions.
    Excluded,
}

/// Privacy class of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrivacyClass {
    /// Identifies a person on its own (name, ID number, phone, ...). Declaring one documents
    /// that it was removed: a column of this class present in an upload is an error.
    DirectIdentifier,
    /// Could identify a person in combination (age band, sex, region, ...); k-anonymity is
    /// checked over all of these together.
    QuasiIdentifier,
    /// A sensitive attribute (diagnosis, HIV status, ...).
    Sensitive,
    /// Nothing of the above.
    #[default]
    None,
}

/// Precision of a date column.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DatePrecision {
    /// `YYYY`
    Year,
    /// `YYYY-MM`
    Month,
    /// `YYYY-MM-DD` (an identifier under HIPAA Safe Harbor when related to a person).
    Day,
}

/// Frictionless field constraints.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Constraints {
    /// A value must be present in every row.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// Values must be distinct (implied for `row_id`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unique: bool,
    /// Smallest allowed value: a number, or a date for `date` columns. Required on numeric
    /// features, labels and times: bounds drive differential-privacy clamping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Bound>,
    /// Largest allowed value; see `minimum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<Bound>,
}

impl Constraints {
    fn is_empty(&self) -> bool {
        *self == Constraints::default()
    }
}

/// A bound: a number for numeric columns, an ISO date text for date columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Bound {
    /// Numeric bound.
    Number(f64),
    /// Date bound (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`).
    Date(String),
}

impl Bound {
    /// The numeric value, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Bound::Number(value) => Some(*value),
            Bound::Date(_) => None,
        }
    }
}

/// A category: a bare value or a value with a label and an expected frequency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Category {
    /// A bare value.
    Value(CategoryValue),
    /// A value with optional label and frequency.
    Labeled {
        /// The value as it appears in the data.
        value: CategoryValue,
        /// Human label.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        /// Expected share of rows (0..1). Used to generate dummy data, e.g. the label
        /// balance; unset shares are split evenly among the rest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        frequency: Option<f64>,
    },
}

impl Category {
    /// The value of the category.
    pub fn value(&self) -> &CategoryValue {
        match self {
            Category::Value(value) | Category::Labeled { value, .. } => value,
        }
    }

    /// The declared frequency, if any.
    pub fn frequency(&self) -> Option<f64> {
        match self {
            Category::Value(_) => None,
            Category::Labeled { frequency, .. } => *frequency,
        }
    }
}

/// A category value: an integer or a text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CategoryValue {
    /// Integer category (integer columns).
    Integer(i64),
    /// Text category (string columns).
    Text(String),
}

impl std::fmt::Display for CategoryValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CategoryValue::Integer(value) => write!(f, "{value}"),
            CategoryValue::Text(value) => f.write_str(value),
        }
    }
}

/// Errors reading a manifest. Each names the source, the field path and, where the parser
/// knows it, the line.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {path}: {source}")]
    Io {
        /// The manifest path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not a well-formed manifest.
    #[error("{origin}: {}{field}: {message}", line.map(|l| format!("line {l}, ")).unwrap_or_default())]
    Parse {
        /// File name or `<string>`.
        origin: String,
        /// Field path such as `schema.fields[2].type` (`.` for the top level).
        field: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// Well-formed but inconsistent (e.g. a number feature without bounds).
    #[error("{origin}: {field}: {message}")]
    Invalid {
        /// File name or `<string>`.
        origin: String,
        /// Field path.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Source syntax of a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFormat {
    /// JSON.
    Json,
    /// YAML 1.2 (as read by `serde_norway`).
    Yaml,
}

impl Manifest {
    /// Reads a manifest from a `.json`, `.yaml` or `.yml` file (other extensions: by content).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
            path: origin.clone(),
            source,
        })?;
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => ManifestFormat::Json,
            Some("yaml" | "yml") => ManifestFormat::Yaml,
            _ => guess_format(&text),
        };
        Self::parse(&text, format, &origin)
    }

    /// Reads a manifest from text; JSON when it starts with `{`, YAML otherwise.
    #[allow(clippy::should_implement_trait)] // returns our error type with a field path
    pub fn from_str(text: &str) -> Result<Manifest, ManifestError> {
        Self::parse(text, guess_format(text), "<string>")
    }

    /// Reads a manifest in a given syntax; `origin` names the source in errors.
    pub fn parse(
        text: &str,
        format: ManifestFormat,
        origin: &str,
    ) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = match format {
            ManifestFormat::Json => {
                let mut deserializer = serde_json::Deserializer::from_str(text);
                serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
                    let field = error.path().to_string();
                    let inner = error.into_inner();
                    ManifestError::Parse {
                        origin: origin.to_string(),
                        field,
                        line: Some(inner.line()),
                        message: strip_location(&inner.to_string()),
                    }
                })?
            }
            ManifestFormat::Yaml => {
                let deserializer = serde_norway::Deserializer::from_str(text);
                serde_path_to_error::deserialize(deserializer).map_err(|error| {
                    let field = error.path().to_string();
                    let inner = error.into_inner();
                    ManifestError::Parse {
                        origin: origin.to_string(),
                        field,
                        line: inner.location().map(|l| l.line()),
                        message: strip_location(&inner.to_string()),
                    }
                })?
            }
        };
        manifest
            .check()
            .map_err(|(field, message)| ManifestError::Invalid {
                origin: origin.to_string(),
                field,
                message,
            })?;
        Ok(manifest)
    }

    /// The manifest as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain data structs to a String cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The field with this name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.schema.fields.iter().find(|f| f.name == name)
    }

    /// Fields with a given role, in schema order.
    pub fn fields_with_role(&self, role: Role) -> impl Iterator<Item = &Field> {
        self.schema.fields.iter().filter(move |f| f.role == role)
    }

    /// Columns a submission may use as inputs.
    pub fn features(&self) -> Vec<&Field> {
        self.fields_with_role(Role::Feature).collect()
    }

    /// Target columns: `label` fields, or the `time_to_event` and `event` pair.
    pub fn labels(&self) -> Vec<&Field> {
        self.schema
            .fields
            .iter()
            .filter(|f| matches!(f.role, Role::Label | Role::TimeToEvent | Role::Event))
            .collect()
    }

    /// The label used to stratify splits: the first `label`, else the `event` column.
    pub fn stratification_label(&self) -> Option<&Field> {
        self.fields_with_role(Role::Label)
            .next()
            .or_else(|| self.fields_with_role(Role::Event).next())
    }

    /// The row id column, if declared.
    pub fn row_id(&self) -> Option<&Field> {
        self.fields_with_role(Role::RowId).next()
    }

    /// The site column, if declared.
    pub fn site(&self) -> Option<&Field> {
        self.fields_with_role(Role::Site).next()
    }

    /// Columns declared `quasi_identifier`.
    pub fn quasi_identifiers(&self) -> Vec<&Field> {
        self.schema
            .fields
            .iter()
            .filter(|f| f.privacy() == PrivacyClass::QuasiIdentifier)
            .collect()
    }

    /// Whether a cell text means "missing" under `missingValues`.
    pub fn is_missing(&self, text: &str) -> bool {
        self.schema.missing_values.iter().any(|m| m == text)
    }

    /// Consistency rules the JSON Schema cannot express. Returns (field path, message).
    fn check(&self) -> Result<(), (String, String)> {
        let err = |field: &str, message: &str| Err((field.to_string(), message.to_string()));
        if let Some(profile) = &self.profile
            && profile != PROFILE
        {
            return err("profile", &format!("unknown profile, expected `{PROFILE}`"));
        }
        if self.name.is_empty()
            || !self.name.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
            })
        {
            return err(
                "name",
                "must be non-empty lower-case letters, digits, `-`, `_` or `.`",
            );
        }
        if self.version.trim().is_empty() {
            return err("version", "must not be empty");
        }
        if self.licenses.is_empty() {
            return err("licenses", "at least one license is required");
        }
        if self.permitted_uses.purposes.is_empty() {
            return err("permittedUses.purposes", "at least one purpose is required");
        }
        if self.permitted_uses.terms.trim().is_empty() {
            return err(
                "permittedUses.terms",
                "the data-use terms must not be empty",
            );
        }
        if let Some(hash) = &self.hash
            && crate::hash::ContentHash::parse(hash).is_none()
        {
            return err(
                "hash",
                "must be `sha256:` followed by 64 lower-case hex digits",
            );
        }
        let period = &self.provenance.collection_period;
        let start = PartialDate::parse(&period.start);
        let end = PartialDate::parse(&period.end);
        match (start, end) {
            (None, _) => {
                return err(
                    "provenance.collectionPeriod.start",
                    "must be YYYY, YYYY-MM or YYYY-MM-DD",
                );
            }
            (_, None) => {
                return err(
                    "provenance.collectionPeriod.end",
                    "must be YYYY, YYYY-MM or YYYY-MM-DD",
                );
            }
            (Some(start), Some(end)) if start.first_day() > end.last_day() => {
                return err("provenance.collectionPeriod", "start is after end");
            }
            _ => {}
        }
        for (key, text) in [
            (
                "provenance.ethicsApproval",
                &self.provenance.ethics_approval,
            ),
            ("provenance.legalBasis", &self.provenance.legal_basis),
        ] {
            if text.trim().is_empty() {
                return err(key, "must not be empty");
            }
        }
        let fields = &self.schema.fields;
        if fields.is_empty() {
            return err("schema.fields", "at least one field is required");
        }
        let mut names = HashSet::new();
        for (index, field) in fields.iter().enumerate() {
            let at = format!("schema.fields[{index}]");
            if field.name.is_empty() {
                return err(&format!("{at}.name"), "must not be empty");
            }
            if !names.insert(field.name.as_str()) {
                return err(
                    &format!("{at}.name"),
                    &format!("duplicate field name `{}`", field.name),
                );
            }
            check_field(field).map_err(|(key, message)| {
                let path = if key.is_empty() {
                    at.clone()
                } else {
                    format!("{at}.{key}")
                };
                (path, message)
            })?;
        }
        let count = |role| fields.iter().filter(|f| f.role == role).count();
        if count(Role::RowId) > 1 {
            return err("schema.fields", "at most one field may have role `row_id`");
        }
        if count(Role::Site) > 1 {
            return err("schema.fields", "at most one field may have role `site`");
        }
        let (times, events) = (count(Role::TimeToEvent), count(Role::Event));
        if times > 1 || events > 1 || times != events {
            return err(
                "schema.fields",
                "a time-to-event target needs exactly one `time_to_event` and one `event` field",
            );
        }
        if count(Role::Label) == 0 && times == 0 {
            return err(
                "schema.fields",
                "no target: declare a `label` field or a `time_to_event` + `event` pair",
            );
        }
        Ok(())
    }
}

/// Field-level consistency. Returns (key within the field, message).
fn check_field(field: &Field) -> Result<(), (String, String)> {
    let err = |key: &str, message: String| Err((key.to_string(), message));
    let numeric = matches!(field.field_type, FieldType::Number | FieldType::Integer);
    if field.privacy() == PrivacyClass::DirectIdentifier && field.role != Role::Excluded {
        return err(
            "role",
            "a `direct_identifier` may only be declared `excluded` (it must not be uploaded)"
                .into(),
        );
    }
    if field.role == Role::RowId && field.privacy() != PrivacyClass::None {
        return err(
            "privacy",
            "a row id must be a meaningless pseudonym with privacy `none`".into(),
        );
    }
    let bounds = [
        ("constraints.minimum", &field.constraints.minimum),
        ("constraints.maximum", &field.constraints.maximum),
    ];
    for (key, bound) in bounds {
        match (field.field_type, bound) {
            (_, None) => {}
            (FieldType::Number | FieldType::Integer, Some(Bound::Number(value))) => {
                if !value.is_finite() {
                    return err(key, "must be a finite number".into());
                }
            }
            (FieldType::Date, Some(Bound::Date(text))) => {
                if PartialDate::parse(text).is_none() {
                    return err(key, "must be a date YYYY, YYYY-MM or YYYY-MM-DD".into());
                }
            }
            (field_type, Some(_)) => {
                return err(
                    key,
                    format!("does not fit a `{}` field", field_type_name(field_type)),
                );
            }
        }
    }
    if let (Some(Bound::Number(min)), Some(Bound::Number(max))) =
        (&field.constraints.minimum, &field.constraints.maximum)
        && min > max
    {
        return err("constraints", "minimum is greater than maximum".into());
    }
    if let (Some(Bound::Date(min)), Some(Bound::Date(max))) =
        (&field.constraints.minimum, &field.constraints.maximum)
        && let (Some(min), Some(max)) = (PartialDate::parse(min), PartialDate::parse(max))
        && min.first_day() > max.last_day()
    {
        return err("constraints", "minimum is after maximum".into());
    }
    if let Some(categories) = &field.categories {
        if !matches!(field.field_type, FieldType::String | FieldType::Integer) {
            return err(
                "categories",
                "only `string` and `integer` fields may have categories".into(),
            );
        }
        if categories.is_empty() {
            return err("categories", "must not be empty".into());
        }
        let mut seen = HashSet::new();
        let mut declared_share = 0.0;
        for (index, category) in categories.iter().enumerate() {
            let fits = matches!(
                (field.field_type, category.value()),
                (FieldType::Integer, CategoryValue::Integer(_))
                    | (FieldType::String, CategoryValue::Text(_))
            );
            if !fits {
                return err(
                    &format!("categories[{index}]"),
                    format!(
                        "value does not fit a `{}` field",
                        field_type_name(field.field_type)
                    ),
                );
            }
            if !seen.insert(category.value().clone()) {
                return err(&format!("categories[{index}]"), "duplicate category".into());
            }
            if let Some(share) = category.frequency() {
                if !(0.0..=1.0).contains(&share) {
                    return err(
                        &format!("categories[{index}].frequency"),
                        "must be between 0 and 1".into(),
                    );
                }
                declared_share += share;
            }
        }
        if declared_share > 1.0 + 1e-9 {
            return err("categories", "frequencies add up to more than 1".into());
        }
    }
    let bounded_role = matches!(field.role, Role::Feature | Role::Label | Role::TimeToEvent);
    if numeric
        && bounded_role
        && field.categories.is_none()
        && (field.constraints.minimum.is_none() || field.constraints.maximum.is_none())
    {
        return err(
            "constraints",
            "numeric features, labels and times need `minimum` and `maximum` (they drive privacy clamping)"
                .into(),
        );
    }
    match (field.field_type, field.precision) {
        (FieldType::Date, None) => {
            return err(
                "precision",
                "a `date` field needs `precision` (year, month or day)".into(),
            );
        }
        (FieldType::Date, Some(_)) | (_, None) => {}
        (_, Some(_)) => return err("precision", "only `date` fields have a precision".into()),
    }
    if (field.true_values.is_some() || field.false_values.is_some())
        && field.field_type != FieldType::Boolean
    {
        return err(
            "trueValues",
            "only `boolean` fields have true/false values".into(),
        );
    }
    match field.role {
        Role::Label => {
            let ok = match field.field_type {
                FieldType::Boolean | FieldType::Number => true,
                FieldType::Integer | FieldType::String => {
                    field.field_type == FieldType::Integer || field.categories.is_some()
                }
                FieldType::Date => false,
            };
            if !ok {
                return err(
                    "type",
                    "a label is boolean, number, integer, or string with categories".into(),
                );
            }
        }
        Role::Event => {
            let binary = field.field_type == FieldType::Boolean
                || (field.field_type == FieldType::Integer
                    && field.categories.as_ref().is_some_and(|c| {
                        c.iter().all(|c| {
                            matches!(
                                c.value(),
                                CategoryValue::Integer(0) | CategoryValue::Integer(1)
                            )
                        })
                    }));
            if !binary {
                return err(
                    "type",
                    "an event indicator is boolean or integer with categories [0, 1]".into(),
                );
            }
        }
        Role::TimeToEvent if !numeric => {
            return err("type", "a time-to-event is `number` or `integer`".into());
        }
        Role::RowId if !matches!(field.field_type, FieldType::String | FieldType::Integer) => {
            return err("type", "a row id is `string` or `integer`".into());
        }
        Role::Site if !matches!(field.field_type, FieldType::String | FieldType::Integer) => {
            return err("type", "a site is `string` or `integer`".into());
        }
        _ => {}
    }
    Ok(())
}

/// The spec name of a field type.
pub fn field_type_name(field_type: FieldType) -> &'static str {
    match field_type {
        FieldType::Number => "number",
        FieldType::Integer => "integer",
        FieldType::Boolean => "boolean",
        FieldType::String => "string",
        FieldType::Date => "date",
    }
}

impl Field {
    /// The privacy class, `none` when left out.
    pub fn privacy(&self) -> PrivacyClass {
        self.privacy.unwrap_or_default()
    }

    /// Texts read as `true`.
    pub fn true_texts(&self) -> Vec<&str> {
        match &self.true_values {
            Some(values) => values.iter().map(String::as_str).collect(),
            None => vec!["true", "True", "TRUE", "1"],
        }
    }

    /// Texts read as `false`.
    pub fn false_texts(&self) -> Vec<&str> {
        match &self.false_values {
            Some(values) => values.iter().map(String::as_str).collect(),
            None => vec!["false", "False", "FALSE", "0"],
        }
    }

    /// Numeric bounds (minimum, maximum) where declared.
    pub fn numeric_bounds(&self) -> (Option<f64>, Option<f64>) {
        (
            self.constraints.minimum.as_ref().and_then(Bound::as_f64),
            self.constraints.maximum.as_ref().and_then(Bound::as_f64),
        )
    }

    /// Whether values must be distinct.
    pub fn is_unique(&self) -> bool {
        self.constraints.unique || self.role == Role::RowId
    }

    /// Whether every row needs a value (declared, or implied by the role).
    pub fn is_required(&self) -> bool {
        self.constraints.required
            || matches!(
                self.role,
                Role::RowId | Role::Site | Role::Label | Role::TimeToEvent | Role::Event
            )
    }
}

fn guess_format(text: &str) -> ManifestFormat {
    if text.trim_start().starts_with('{') {
        ManifestFormat::Json
    } else {
        ManifestFormat::Yaml
    }
}

/// serde_json and serde_norway append " at line L column C"; we report the line separately.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}
