//! The real platform in one call: an [`Arena`] with the datasets-spec validator and the
//! sandbox executor, for the faces (`medarena serve`, `medarena worker`, the web tests).
//!
//! ```no_run
//! # async fn demo() -> Result<(), medarena_arena::ArenaError> {
//! use medarena_arena::platform::{self, PlatformConfig};
//! let config = PlatformConfig::new("/var/lib/medarena")?;
//! // With the ledger as audit sink (`ledger_sink::LedgerSink`), use the builder:
//! let arena = platform::builder(config)?
//!     // .audit_sink(ledger_sink)
//!     .open()
//!     .await?;
//! # let _ = arena; Ok(()) }
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use medarena_sandbox::ChildCommand;
use zeroize::Zeroizing;

use crate::config::ArenaConfig;
use crate::crypto::MasterKey;
use crate::error::{ArenaError, ArenaResult};
use crate::pipeline::{
    ARTIFACT_CACHE_PURPOSE, PipelineConfig, SandboxExecutor, SpecValidator, artifact_cache,
};
use crate::service::{Arena, ArenaBuilder};
use crate::vault::KeyBroker;

/// The arena's configuration plus the pipeline's.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    pub arena: ArenaConfig,
    pub pipeline: PipelineConfig,
    /// Keep compiled modules in `<data dir>/artifact-cache` (on by default), unless
    /// `pipeline.cache` is already set.
    pub artifact_cache: bool,
    /// On a worker host: where data keys come from instead of the master key (see
    /// [`ArenaBuilder::key_broker`]).
    pub key_broker: Option<Arc<dyn KeyBroker>>,
}

impl PlatformConfig {
    /// Defaults for a data directory, with this executable as the sandbox child
    /// (`<current exe> sandbox-child`: the `medarena` binary).
    pub fn new(data_dir: impl Into<PathBuf>) -> ArenaResult<Self> {
        let child = ChildCommand::current_exe("sandbox-child").map_err(|err| {
            ArenaError::Config(format!(
                "locating this executable for the sandbox child: {err}"
            ))
        })?;
        Ok(Self::with_child(ArenaConfig::new(data_dir), child))
    }

    pub fn with_child(arena: ArenaConfig, child: ChildCommand) -> Self {
        PlatformConfig {
            arena,
            pipeline: PipelineConfig::new(child),
            artifact_cache: true,
            key_broker: None,
        }
    }
}

/// An [`ArenaBuilder`] with the real validator and executor set; add the audit sink (the
/// ledger), a clock or other storage, then `open()`.
pub fn builder(config: PlatformConfig) -> ArenaResult<ArenaBuilder> {
    let PlatformConfig {
        arena,
        mut pipeline,
        artifact_cache: cache_wanted,
        key_broker,
    } = config;
    if cache_wanted && pipeline.cache.is_none() {
        std::fs::create_dir_all(arena.data_dir()).map_err(|err| {
            ArenaError::Config(format!(
                "creating data directory {}: {err}",
                arena.data_dir().display()
            ))
        })?;
        let cache_key = match &key_broker {
            Some(broker) => Zeroizing::new(broker.cache_key()),
            None => MasterKey::load(&arena.master_key)
                .map_err(|err| ArenaError::Config(err.to_string()))?
                .derive_key(ARTIFACT_CACHE_PURPOSE)
                .into(),
        };
        pipeline.cache = Some(artifact_cache(arena.data_dir(), &cache_key).map_err(|err| {
            ArenaError::Config(format!("opening the compiled-module cache: {err}"))
        })?);
    }
    let validator = Arc::new(SpecValidator::new(pipeline.k_anonymity));
    let executor = Arc::new(SandboxExecutor::new(pipeline));
    let builder = Arena::builder(arena)
        .validator(validator)
        .executor(executor);
    Ok(match key_broker {
        Some(broker) => builder.key_broker(broker),
        None => builder,
    })
}

/// Opens the platform with the default audit sink (tracing). Use [`builder`] to plug in
/// the ledger.
pub async fn open(config: PlatformConfig) -> ArenaResult<Arena> {
    builder(config)?.open().await
}
