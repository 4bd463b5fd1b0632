//! Where a checkpoint comes from: a local directory, or a Hugging Face repository id fetched (and
//! cached) with hf-hub. Offline machines get an error that says how to use a local copy instead.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Files every PaddleOCR-VL checkpoint must have besides its weights.
const REQUIRED: [&str; 4] = ["config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json"];
/// Files used when present.
const OPTIONAL: [&str; 2] = ["generation_config.json", "chat_template.jinja"];

/// Resolves `--model` to a directory in the Hugging Face file layout.
pub fn resolve_model(spec: &str) -> Result<PathBuf> {
    let path = Path::new(spec);
    if path.is_dir() {
        check_dir(path)?;
        return Ok(path.to_path_buf());
    }
    if path.exists() {
        bail!("--model {spec} is a file; give the checkpoint directory (holding config.json)");
    }
    if !looks_like_repo_id(spec) {
        bail!("--model {spec}: no such directory, and not a Hugging Face repository id (owner/name)");
    }
    fetch_repo(spec)
}

fn looks_like_repo_id(spec: &str) -> bool {
    let mut parts = spec.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

fn check_dir(dir: &Path) -> Result<()> {
    let missing: Vec<&str> = REQUIRED.iter().copied().filter(|f| !dir.join(f).is_file()).collect();
    if !missing.is_empty() {
        bail!("{} is not a PaddleOCR-VL checkpoint: missing {}", dir.display(), missing.join(", "));
    }
    Ok(())
}

fn fetch_repo(repo_id: &str) -> Result<PathBuf> {
    let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let cache = hf_hub::Cache::from_env();
    let cached = cache.model(repo_id.to_string());
    let get = |file: &str| -> Result<PathBuf> {
        if let Some(p) = cached.get(file) {
            return Ok(p);
        }
        if offline {
            bail!("{file} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set");
        }
        let api = hf_hub::api::sync::ApiBuilder::from_env().with_progress(true).build()?;
        Ok(api.model(repo_id.to_string()).get(file)?)
    };
    let result = (|| -> Result<PathBuf> {
        let config = get("config.json")?;
        for f in REQUIRED.iter().skip(1) {
            get(f)?;
        }
        for f in OPTIONAL {
            let _ = get(f); // absent in some releases
        }
        let dir = config.parent().context("cached config.json has no parent directory")?.to_path_buf();
        match get("model.safetensors") {
            Ok(_) => {}
            Err(_) => {
                let index = get("model.safetensors.index.json")?;
                let index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(index)?)?;
                let shards = index.get("weight_map").and_then(|m| m.as_object()).context("index without weight_map")?;
                let mut names: Vec<&str> = shards.values().filter_map(|v| v.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                for name in names {
                    get(name)?;
                }
            }
        }
        Ok(dir)
    })();
    result.with_context(|| {
        format!(
            "could not get the model '{repo_id}' from the Hugging Face Hub (is this machine offline?). \
             Download the repository on a connected machine (e.g. `huggingface-cli download {repo_id} --local-dir DIR`), \
             copy DIR here and pass `--model DIR`"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_and_paths() {
        assert!(looks_like_repo_id("PaddlePaddle/PaddleOCR-VL"));
        assert!(!looks_like_repo_id("a/b/c"));
        assert!(!looks_like_repo_id("/abs/path"));
        assert!(!looks_like_repo_id("name"));
        let err = resolve_model("/definitely/not/here").unwrap_err().to_string();
        assert!(err.contains("no such directory"), "{err}");
    }

    #[test]
    fn offline_hub_errors_point_to_a_local_directory() {
        std::env::set_var("HF_HUB_OFFLINE", "1");
        std::env::set_var("HF_HOME", std::env::temp_dir().join("folio-empty-hf-home"));
        let err = format!("{:#}", resolve_model("nobody/no-such-model").unwrap_err());
        assert!(err.contains("--model DIR"), "{err}");
        assert!(err.contains("HF_HUB_OFFLINE"), "{err}");
    }
}
