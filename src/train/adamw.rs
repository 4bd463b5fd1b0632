//! AdamW ("Decoupled Weight Decay Regularization", Loshchilov & Hutter 2019) whose moments can be
//! saved and restored, so a training run resumes exactly where its last checkpoint left it
//! (candle_nn's optimizer keeps its state private). Norm weights, biases and embeddings are not
//! decayed.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Tensor, Var};
use candle_nn::VarMap;

pub struct AdamW {
    params: Vec<(String, Var, bool)>,
    m: HashMap<String, Tensor>,
    v: HashMap<String, Tensor>,
    pub step: usize,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamW {
    pub fn new(vars: &VarMap, weight_decay: f64) -> Result<Self> {
        let data = vars.data().lock().map_err(|_| anyhow::anyhow!("variable map poisoned"))?;
        let mut params: Vec<(String, Var, bool)> = data
            .iter()
            .map(|(name, var)| {
                let decay = var.as_tensor().rank() >= 2 && !name.contains("embed") && !name.contains("norm");
                (name.clone(), var.clone(), decay)
            })
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let mut m = HashMap::new();
        let mut v = HashMap::new();
        for (name, var, _) in &params {
            m.insert(name.clone(), var.as_tensor().zeros_like()?);
            v.insert(name.clone(), var.as_tensor().zeros_like()?);
        }
        Ok(Self { params, m, v, step: 0, beta1: 0.9, beta2: 0.98, eps: 1e-8, weight_decay })
    }

    /// One update from `grads`, after scaling all gradients so their global norm is at most
    /// `clip`. Returns the norm before clipping.
    pub fn step(&mut self, grads: &candle_core::backprop::GradStore, lr: f64, clip: f64) -> Result<f64> {
        let mut sq = 0f64;
        for (_, var, _) in &self.params {
            if let Some(g) = grads.get(var.as_tensor()) {
                sq += g.sqr()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            }
        }
        let norm = sq.sqrt();
        let scale = if norm > clip && norm.is_finite() { clip / norm } else { 1.0 };
        if !norm.is_finite() {
            tracing::warn!(step = self.step, "non-finite gradient norm: update skipped");
            return Ok(norm);
        }
        self.step += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let c1 = 1.0 - b1.powi(self.step as i32);
        let c2 = 1.0 - b2.powi(self.step as i32);
        for (name, var, decay) in &self.params {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            let g = (g * scale)?;
            let m = self.m.get_mut(name).context("moment missing")?;
            let v = self.v.get_mut(name).context("moment missing")?;
            *m = ((&*m * b1)? + (&g * (1.0 - b1))?)?;
            *v = ((&*v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&*m / c1)? / ((&*v / c2)?.sqrt()? + self.eps)?)?;
            let mut w = var.as_tensor().clone();
            if *decay {
                w = (w * (1.0 - lr * self.weight_decay))?;
            }
            var.set(&(w - (update * lr)?)?)?;
        }
        Ok(norm)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for (name, _, _) in &self.params {
            tensors.insert(format!("m.{name}"), self.m[name].clone());
            tensors.insert(format!("v.{name}"), self.v[name].clone());
        }
        tensors.insert("step".into(), Tensor::new(&[self.step as u32], &candle_core::Device::Cpu)?);
        candle_core::safetensors::save(&tensors, path)?;
        Ok(())
    }

    pub fn load(&mut self, path: &Path) -> Result<()> {
        let t = candle_core::safetensors::load(path, &candle_core::Device::Cpu)?;
        for (name, _, _) in &self.params {
            self.m.insert(name.clone(), t.get(&format!("m.{name}")).context("optimizer state without {name}")?.clone());
            self.v.insert(name.clone(), t.get(&format!("v.{name}")).context("optimizer state incomplete")?.clone());
        }
        self.step = t.get("step").context("optimizer step missing")?.to_vec1::<u32>()?[0] as usize;
        Ok(())
    }
}
