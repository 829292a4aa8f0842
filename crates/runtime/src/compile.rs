//! Turning a component's `source` into a compiled wasmtime `Component`, once.
//!
//! `wasm32-wasip1` builds are core modules: they are wrapped into components with the WASI
//! preview1 reactor adapter, as Spin does. Compiled artifacts are cached on disk, keyed by the
//! source bytes and the engine's compatibility hash, so a restart does not recompile.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Where compiled components are kept between runs.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
}

impl CompileCache {
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Some(dir.into()),
        }
    }

    pub fn disabled() -> Self {
        Self { dir: None }
    }

    /// Compile (or load from the cache) the wasm file at `path`.
    pub fn load(&self, engine: &Engine, path: &Path) -> Result<(Component, CacheOutcome)> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read component source {}", path.display()))?;
        self.load_bytes(engine, &bytes)
            .with_context(|| format!("cannot load component {}", path.display()))
    }

    pub fn load_bytes(&self, engine: &Engine, bytes: &[u8]) -> Result<(Component, CacheOutcome)> {
        let Some(dir) = &self.dir else {
            return Ok((compile(engine, bytes)?, CacheOutcome::Compiled));
        };
        let file = dir.join(format!("{}.cwasm", cache_key(engine, bytes)));
        if file.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the same
            // compatibility hash (it is part of the name) and is only ever replaced atomically.
            // The workspace denies `unsafe_code`; this is the one place the host needs it.
            #[allow(unsafe_code)]
            let cached = unsafe { Component::deserialize_file(engine, &file) };
            match cached {
                Ok(component) => return Ok((component, CacheOutcome::Cached)),
                Err(e) => {
                    tracing::warn!(file = %file.display(), "ignoring unreadable cache entry: {e:#}")
                }
            }
        }
        let component = compile(engine, bytes)?;
        if let Err(e) = store_atomically(dir, &file, &component.serialize()?) {
            tracing::warn!(dir = %dir.display(), "cannot write compile cache: {e:#}");
        }
        Ok((component, CacheOutcome::Compiled))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Compiled,
    Cached,
}

fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component> {
    let component_bytes = componentize(bytes)?;
    Ok(Component::new(engine, &component_bytes)?)
}

/// A core module becomes a component via the preview1 reactor adapter; a component passes through.
pub fn componentize(bytes: &[u8]) -> Result<Vec<u8>> {
    if wasmparser::Parser::is_component(bytes) {
        return Ok(bytes.to_vec());
    }
    if !wasmparser::Parser::is_core_wasm(bytes) {
        anyhow::bail!("not a WebAssembly module or component");
    }
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(bytes)?
        .adapter(
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .encode()
        .context("cannot turn the core module into a component")
}

fn cache_key(engine: &Engine, bytes: &[u8]) -> String {
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let mut sha = Sha256::new();
    sha.update(engine_hash.finish().to_le_bytes());
    sha.update(bytes);
    sha.finalize()
        .iter()
        .take(20)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn store_atomically(dir: &Path, file: &Path, data: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, file)?;
    Ok(())
}
