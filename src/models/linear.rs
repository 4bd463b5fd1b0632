//! A linear layer whose weight sits in the layout the CPU matmul is fastest with.
//!
//! Checkpoints store a linear weight as (out, in), and `candle_nn::Linear` multiplies by its
//! transposed view. On the CPU the gemm kernels run that strided operand about half as fast at
//! the row counts of batched decoding (`cargo bench --bench matmul`: a decoder layer's
//! projections at 64 rows, 156 GFLOP/s with a contiguous (in, out) weight, 73 with the transposed
//! view; 4 rows: 33 vs 8). So a frozen weight (a checkpoint loaded for inference) is transposed
//! once, at load, into a contiguous (in, out) matrix. A weight that is being trained keeps the
//! view: the optimizer updates the variable in place, and the view sees every update and carries
//! gradients back to it, where a copy would go stale.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

#[derive(Clone, Debug)]
pub struct Linear {
    /// (in, out).
    weight_t: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// From a checkpoint-layout (out, in) weight.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let t = weight.t()?;
        let weight_t = if weight.track_op() { t } else { t.contiguous()? };
        Ok(Self { weight_t, bias })
    }

    /// A head that shares its weight with another layer (tied embeddings): always the view, so
    /// the shared matrix is not held twice.
    pub fn tied(weight: &Tensor) -> Result<Self> {
        Ok(Self { weight_t: weight.t()?, bias: None })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // Every leading dimension folds into the rows of one 2-D matmul.
        let Some((&k, lead)) = x.dims().split_last() else {
            candle_core::bail!("linear: a scalar input has no feature dimension");
        };
        let y = match lead {
            [_] => x.matmul(&self.weight_t)?,
            _ => {
                let y = x.reshape((lead.iter().product::<usize>(), k))?.matmul(&self.weight_t)?;
                y.reshape([lead, &[self.weight_t.dim(1)?]].concat())?
            }
        };
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// `in_dim → out_dim` from `vb` (`weight` (out, in), and `bias` when `bias`), as candle_nn's
/// `linear_b` names them.
pub fn linear_b(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder) -> Result<Linear> {
    let bound = 1.0 / (in_dim as f64).sqrt();
    let weight = vb.get_with_hints((out_dim, in_dim), "weight", candle_nn::init::DEFAULT_KAIMING_NORMAL)?;
    let bias =
        if bias { Some(vb.get_with_hints(out_dim, "bias", Init::Uniform { lo: -bound, up: bound })?) } else { None };
    Linear::new(weight, bias)
}

/// [`linear_b`] with a bias.
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    linear_b(in_dim, out_dim, true, vb)
}

/// [`linear_b`] without a bias.
pub fn linear_no_bias(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    linear_b(in_dim, out_dim, false, vb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    fn reference(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
        candle_nn::Linear::new(w.clone(), Some(b.clone())).forward(x)
    }

    #[test]
    fn frozen_and_trained_weights_give_candles_result_on_any_rank() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (5, 3), &dev)?;
        let b = Tensor::randn(0f32, 1.0, 5, &dev)?;
        let frozen = Linear::new(w.clone(), Some(b.clone()))?;
        assert!(frozen.weight_t.is_contiguous(), "a frozen weight is copied into (in, out)");
        let var = Var::from_tensor(&w)?;
        let trained = Linear::new(var.as_tensor().clone(), Some(b.clone()))?;
        assert!(!trained.weight_t.is_contiguous(), "a variable keeps the view");
        for shape in [vec![4, 3], vec![2, 4, 3], vec![2, 2, 1, 3]] {
            let x = Tensor::randn(0f32, 1.0, shape.as_slice(), &dev)?;
            let want = reference(&x, &w, &b)?;
            for layer in [&frozen, &trained] {
                let got = layer.forward(&x)?;
                assert_eq!(got.dims(), want.dims());
                let err = (got - &want)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
                assert!(err < 1e-5, "{shape:?}: {err}");
            }
        }
        Ok(())
    }

    #[test]
    fn a_trained_weight_sees_optimizer_updates_and_gets_gradients() -> Result<()> {
        let dev = Device::Cpu;
        let var = Var::from_tensor(&Tensor::ones((2, 3), DType::F32, &dev)?)?;
        let layer = Linear::new(var.as_tensor().reshape((2, 3))?, None)?;
        let x = Tensor::ones((1, 3), DType::F32, &dev)?;
        assert_eq!(layer.forward(&x)?.to_vec2::<f32>()?, [[3.0, 3.0]]);
        let grads = layer.forward(&x)?.sum_all()?.backward()?;
        let g = grads.get(var.as_tensor()).expect("gradient reaches the variable");
        assert_eq!(g.to_vec2::<f32>()?, [[1.0; 3]; 2]);
        var.set(&Tensor::zeros((2, 3), DType::F32, &dev)?)?;
        assert_eq!(layer.forward(&x)?.to_vec2::<f32>()?, [[0.0, 0.0]], "the in-place update is seen");
        Ok(())
    }
}
