//! The public leaderboard, cached as ready JSON bytes for a short time.
//!
//! The public leaderboard is the most requested page of a live competition and the same
//! for every viewer (the role matrix lets everyone read it), so it is computed from the
//! database at most once per competition per `ttl` and served from memory in between.
//! A new score therefore appears within `ttl` (one second by default). Private
//! leaderboards and anything per-viewer are never cached.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use medarena_arena::CompetitionId;

#[derive(Debug)]
pub struct LeaderboardCache {
    ttl: Duration,
    entries: RwLock<HashMap<CompetitionId, (Instant, Bytes)>>,
}

impl LeaderboardCache {
    pub fn new(ttl: Duration) -> Self {
        LeaderboardCache {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The cached JSON, when fresh.
    pub fn get(&self, competition: CompetitionId) -> Option<Bytes> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&competition)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, bytes)| bytes.clone())
    }

    pub fn put(&self, competition: CompetitionId, json: Bytes) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        entries.insert(competition, (Instant::now(), json));
    }

    /// Forgets a competition (after closing or publishing it).
    pub fn invalidate(&self, competition: CompetitionId) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        entries.remove(&competition);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_can_be_invalidated() {
        let cache = LeaderboardCache::new(Duration::from_millis(50));
        let id = CompetitionId(1);
        assert!(cache.get(id).is_none());
        cache.put(id, Bytes::from_static(b"[]"));
        assert_eq!(cache.get(id), Some(Bytes::from_static(b"[]")));
        cache.invalidate(id);
        assert!(cache.get(id).is_none());
        cache.put(id, Bytes::from_static(b"[]"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get(id).is_none());
    }
}
