//! The tamper-evident ledger: an append-only RFC 6962 Merkle log, signed checkpoints and
//! receipts.
