//! folio's own small OCR model, compiled into the binary so that a fresh machine parses documents
//! offline with no `--model` at all.
//!
//! The files are those of `models/folio-ocr-small/` (Hugging Face layout). On first use they are
//! written once to a per-version cache directory and loaded from there through the same
//! [`Checkpoint::load`](super::paddleocr_vl::Checkpoint::load) path as any downloaded checkpoint:
//! one loader, mmapped weights, nothing special-cased.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};

/// Name of the embedded model (also its directory under `models/`).
pub const NAME: &str = "folio-ocr-small";

#[cfg(folio_embedded_model)]
macro_rules! model_file {
    ($name:literal) => {
        ($name, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/models/folio-ocr-small/", $name)) as &[u8])
    };
}

#[cfg(folio_embedded_model)]
const FILES: [(&str, &[u8]); 8] = [
    model_file!("folio.json"),
    model_file!("config.json"),
    model_file!("preprocessor_config.json"),
    model_file!("tokenizer.json"),
    model_file!("tokenizer_config.json"),
    model_file!("generation_config.json"),
    model_file!("chat_template.jinja"),
    model_file!("model.safetensors"),
];

/// A build without the model (an empty `models/folio-ocr-small/`) has no files to write.
#[cfg(not(folio_embedded_model))]
const FILES: [(&str, &[u8]); 0] = [];

/// The directory holding the embedded model's files, written there on first use.
///
/// The directory name carries a checksum of the files, so a binary with a newer model never reads
/// an older one's files. Each caller writes a temporary sibling of its own and renames it into
/// place, so threads or processes starting at once, or one killed mid-write, never see half a model.
pub fn model_dir() -> Result<PathBuf> {
    if FILES.is_empty() {
        bail!("this folio was built without its own model (models/folio-ocr-small/ was empty at build time): pass --model DIR or a Hugging Face repository id, or set FOLIO_MODEL");
    }
    model_dir_in(&cache_root())
}

fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("FOLIO_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("folio")
}

fn version_tag() -> String {
    let mut h = crc32fast::Hasher::new();
    for (name, bytes) in FILES {
        h.update(name.as_bytes());
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    format!("{:08x}", h.finalize())
}

fn model_dir_in(root: &Path) -> Result<PathBuf> {
    let dir = root.join("models").join(format!("{NAME}-{}", version_tag()));
    if is_complete(&dir) {
        return Ok(dir);
    }
    // One temporary directory per call: threads of one process must not write into each other's.
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let tmp = root.join("models").join(format!(".{NAME}-{}-{call}.tmp", std::process::id()));
    let write = || -> Result<()> {
        std::fs::create_dir_all(&tmp)?;
        for (name, bytes) in FILES {
            std::fs::write(tmp.join(name), bytes)?;
        }
        Ok(())
    };
    let written = write()
        .with_context(|| format!("writing the embedded model to {} (set FOLIO_CACHE to another place)", tmp.display()));
    if written.is_err() || is_complete(&dir) {
        // Failed, or another thread or process put a complete copy there first (never replace
        // a complete copy: someone may have its weights mapped).
        let _ = std::fs::remove_dir_all(&tmp);
        return written.map(|()| dir);
    }
    if dir.exists() {
        // A damaged copy (complete ones are only ever made by the rename below).
        let _ = std::fs::remove_dir_all(&dir);
    }
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        // Another writer may have put a complete copy there first; then ours is not needed.
        let _ = std::fs::remove_dir_all(&tmp);
        if !is_complete(&dir) {
            return Err(e).with_context(|| format!("moving the embedded model into {}", dir.display()));
        }
    }
    Ok(dir)
}

fn is_complete(dir: &Path) -> bool {
    FILES.iter().all(|(name, bytes)| std::fs::metadata(dir.join(name)).is_ok_and(|m| m.len() == bytes.len() as u64))
}

#[cfg(all(test, folio_embedded_model))]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_model_is_written_once_and_reused() -> Result<()> {
        let root = std::env::temp_dir().join(format!("folio-embedded-{}", std::process::id()));
        let dir = model_dir_in(&root)?;
        for (name, bytes) in FILES {
            assert_eq!(std::fs::read(dir.join(name))?, bytes, "{name}");
        }
        let modified = std::fs::metadata(dir.join("model.safetensors"))?.modified()?;
        assert_eq!(model_dir_in(&root)?, dir);
        assert_eq!(std::fs::metadata(dir.join("model.safetensors"))?.modified()?, modified, "rewritten");
        // A damaged copy (a truncated file) is replaced by a whole one.
        std::fs::write(dir.join("config.json"), b"{")?;
        assert!(!is_complete(&dir));
        assert_eq!(model_dir_in(&root)?, dir);
        let config = FILES.iter().find(|(name, _)| *name == "config.json").map(|f| f.1);
        assert_eq!(Some(std::fs::read(dir.join("config.json"))?.as_slice()), config);
        std::fs::remove_dir_all(&root)?;
        Ok(())
    }

    /// Threads of one process (tests, a server's first requests) asking at once each get a whole
    /// copy, never one another writes into.
    #[test]
    fn threads_asking_at_once_all_get_whole_files() -> Result<()> {
        let root = std::env::temp_dir().join(format!("folio-embedded-race-{}", std::process::id()));
        std::thread::scope(|s| -> Result<()> {
            let handles: Vec<_> = (0..6)
                .map(|_| {
                    s.spawn(|| -> Result<()> {
                        let dir = model_dir_in(&root)?;
                        for (name, bytes) in FILES {
                            anyhow::ensure!(std::fs::read(dir.join(name))? == bytes, "{name} differs");
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join().map_err(|_| anyhow::anyhow!("thread panicked"))??;
            }
            Ok(())
        })?;
        std::fs::remove_dir_all(&root)?;
        Ok(())
    }
}
