//! A run's starting weights: a fresh initialisation, or (`--init-from`) another model's weights.

use std::collections::HashMap;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Fills a fresh variable map with sensible initial values: unit norms, zero biases, weights with
/// standard deviation 1/√fan_in.
pub(super) fn initialise(map: &VarMap, seed: u64) -> Result<()> {
    let data = map.data().lock().map_err(|_| anyhow::anyhow!("variable map poisoned"))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for name in names {
        let var = &data[name];
        let dims = var.as_tensor().dims().to_vec();
        let value = if name.ends_with("bias") {
            Tensor::zeros(dims.as_slice(), DType::F32, &Device::Cpu)?
        } else if name.contains("norm") {
            Tensor::ones(dims.as_slice(), DType::F32, &Device::Cpu)?
        } else {
            let fan_in: usize = dims[1..].iter().product::<usize>().max(1);
            let std = 1.0 / (fan_in as f64).sqrt();
            let n: usize = dims.iter().product();
            let values: Vec<f32> = (0..n).map(|_| (normal(&mut rng) * std) as f32).collect();
            Tensor::from_vec(values, dims.as_slice(), &Device::Cpu)?
        };
        var.set(&value)?;
    }
    Ok(())
}

/// Sets every variable that `tensors` holds (as f32, whatever it was stored as) and returns how
/// many there were; the others keep their values. A stored tensor with fewer rows than the
/// variable (an embedding or output head before the vocabulary grew) fills the first rows and the
/// new rows keep their values; for names starting with `blank_last` (a CTC head, whose last class
/// is its blank) the stored last row stays last. Any other shape mismatch is an error.
pub(super) fn load_present(map: &VarMap, tensors: &HashMap<String, Tensor>, blank_last: &str) -> Result<usize> {
    let data = map.data().lock().map_err(|_| anyhow::anyhow!("variable map poisoned"))?;
    let mut kept = 0;
    for (name, var) in data.iter() {
        let Some(stored) = tensors.get(name) else { continue };
        let stored = stored.to_dtype(DType::F32)?;
        let value = grown(&stored, var.as_tensor(), name.starts_with(blank_last))?.unwrap_or(stored);
        var.set(&value).with_context(|| format!("setting {name}"))?;
        kept += 1;
    }
    Ok(kept)
}

/// `stored` widened to `fresh`'s rows when it has fewer (the rest from `fresh`), with its last row
/// moved to the end when `blank_last`; `None` when the shapes do not call for it. Only rank ≥ 2
/// tensors grow, except a blank-last head's bias.
fn grown(stored: &Tensor, fresh: &Tensor, blank_last: bool) -> Result<Option<Tensor>> {
    let (have, want) = (stored.dims(), fresh.dims());
    let rows_only = have.len() == want.len() && have[1..] == want[1..] && have[0] < want[0];
    if !rows_only || (have.len() < 2 && !blank_last) {
        return Ok(None);
    }
    let (old, new) = (have[0], want[0]);
    let value = if blank_last && old > 0 {
        let tokens = stored.narrow(0, 0, old - 1)?;
        let added = fresh.narrow(0, old - 1, new - old)?;
        Tensor::cat(&[&tokens, &added, &stored.narrow(0, old - 1, 1)?], 0)?
    } else {
        Tensor::cat(&[stored, &fresh.narrow(0, old, new - old)?], 0)?
    };
    Ok(Some(value))
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load_file(map: &VarMap, path: &Path) -> Result<usize> {
        load_present(map, &candle_core::safetensors::load(path, &Device::Cpu)?, "aux_ctc")
    }

    /// `--init-from`: the tensors a file holds are taken (whatever their dtype), the others keep
    /// their initial values, a grown vocabulary keeps the stored rows (a CTC head its blank last),
    /// and any other shape mismatch is an error.
    #[test]
    fn load_present_takes_what_the_file_holds() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("folio-init-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("w.safetensors");
        let map = VarMap::new();
        let a = map.get((2, 3), "a", candle_nn::Init::Const(1.0), DType::F32, &Device::Cpu)?;
        let b = map.get(4, "b", candle_nn::Init::Const(2.0), DType::F32, &Device::Cpu)?;
        let stored = Tensor::full(5f32, (2, 3), &Device::Cpu)?.to_dtype(DType::F16)?;
        candle_core::safetensors::save(&std::collections::HashMap::from([("a".to_string(), stored)]), &path)?;
        assert_eq!(load_file(&map, &path)?, 1);
        assert_eq!(a.flatten_all()?.to_vec1::<f32>()?, vec![5.0; 6]);
        assert_eq!(b.to_vec1::<f32>()?, vec![2.0; 4]);
        // Fewer rows (a vocabulary that grew): the first rows are taken, the rest keep theirs.
        let short = Tensor::full(7f32, (1, 3), &Device::Cpu)?;
        candle_core::safetensors::save(&std::collections::HashMap::from([("a".to_string(), short)]), &path)?;
        assert_eq!(load_file(&map, &path)?, 1);
        assert_eq!(a.to_vec2::<f32>()?, [[7.0; 3], [5.0; 3]]);
        // A CTC head's last row is its blank: it stays last, and the new token rows come before.
        let head = map.get((4, 1), "aux_ctc.proj.weight", candle_nn::Init::Const(0.0), DType::F32, &Device::Cpu)?;
        let bias = map.get(4, "aux_ctc.proj.bias", candle_nn::Init::Const(0.0), DType::F32, &Device::Cpu)?;
        let old_head = Tensor::new(&[[1f32], [2.], [9.]], &Device::Cpu)?;
        let old_bias = Tensor::new(&[1f32, 2., 9.], &Device::Cpu)?;
        candle_core::safetensors::save(
            &std::collections::HashMap::from([
                ("aux_ctc.proj.weight".to_string(), old_head),
                ("aux_ctc.proj.bias".to_string(), old_bias),
            ]),
            &path,
        )?;
        assert_eq!(load_file(&map, &path)?, 2);
        assert_eq!(head.flatten_all()?.to_vec1::<f32>()?, [1.0, 2.0, 0.0, 9.0]);
        assert_eq!(bias.to_vec1::<f32>()?, [1.0, 2.0, 0.0, 9.0]);
        // Other shape changes are errors, and a 1-D tensor outside a CTC head does not grow.
        let c = map.get(3, "c", candle_nn::Init::Const(0.0), DType::F32, &Device::Cpu)?;
        let short_c = Tensor::zeros(2, DType::F32, &Device::Cpu)?;
        candle_core::safetensors::save(&std::collections::HashMap::from([("c".to_string(), short_c)]), &path)?;
        assert!(load_file(&map, &path).is_err());
        assert_eq!(c.dims(), [3]);
        for wrong in [Tensor::zeros(4, DType::F32, &Device::Cpu)?, Tensor::zeros((3, 3), DType::F32, &Device::Cpu)?] {
            candle_core::safetensors::save(&std::collections::HashMap::from([("a".to_string(), wrong)]), &path)?;
            assert!(load_file(&map, &path).is_err());
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
