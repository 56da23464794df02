//! The dataset contract: how a hospital describes, uploads and the platform checks a
//! de-identified dataset. See `SPEC.md`.
