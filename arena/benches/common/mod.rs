//! What the arena's bench binaries share: their comma-separated `--name=a,b` arguments and
//! the sandbox each is the child of (a plain binary, started again as `sandbox-child`).

use std::sync::Arc;

use medarena_arena::sandbox::{ArtifactCache, CacheKey, ChildCommand, Sandbox, SandboxConfig};

/// The values of `--name=a,b,c` (or of `default`), those that parse.
pub fn list<T: std::str::FromStr>(name: &str, default: &str) -> Vec<T> {
    std::env::args()
        .find_map(|a| a.strip_prefix(&format!("--{name}=")).map(str::to_owned))
        .unwrap_or_else(|| default.to_owned())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

/// Runs the sandbox child and exits when this binary was started as one; else a sandbox
/// whose children are this binary, with a compiled-module cache in `cache_dir`.
pub fn sandbox_or_child(cache_dir: &std::path::Path) -> Arc<Sandbox> {
    if std::env::args().nth(1).as_deref() == Some("sandbox-child") {
        std::process::exit(medarena_arena::sandbox::run_child());
    }
    let mut config = SandboxConfig::new(ChildCommand::current_exe("sandbox-child").expect("exe"));
    config.cache =
        Some(ArtifactCache::new(cache_dir, CacheKey::from_bytes([7; 32])).expect("cache"));
    Arc::new(Sandbox::new(config))
}
