//! The JSON Schema of the manifest, generated from the serde types with `schemars`. The
//! committed `manifest.schema.json` is checked against this by a test.

use crate::manifest::Manifest;

/// The JSON Schema of [`Manifest`] (draft 2020-12).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Manifest);
    serde_json::to_value(&schema).unwrap_or_default()
}

/// The schema as the committed file holds it (pretty JSON with a final newline).
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    text.push('\n');
    text
}
