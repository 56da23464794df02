//! Metrics, ranking and the privacy layer: the only place a value learned from real data
//! is released.
