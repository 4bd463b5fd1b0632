//! ONNX models on ONNX Runtime, the one ONNX runtime in the binary (the layout detector; the classic
//! OCR pipeline uses it too).
//!
//! Why ONNX Runtime and not pure-Rust tract: one runtime must also run the PP-OCR detection and
//! recognition files as exported (the classic-OCR comparison), and it is several times
//! faster: measured side by side on 2 cores, ONNX Runtime 1.31 runs the CDLA layout network in
//! 144 ms (2 threads; 190 ms on 1), tract-onnx 0.23 in 506 ms. The library is not linked:
//! `ort`'s `load-dynamic` binds `libonnxruntime.so` at run time, once per process, from `FOLIO_ONNXRUNTIME`
//! or from where `scripts/setup.sh` unpacks it (the `onnxruntime` wheel on PyPI). A build never
//! downloads anything, and a machine without the library still parses with `--layout none`.

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use anyhow::{anyhow, Context, Result};
use ort::environment::Environment;
use ort::session::builder::SessionBuilder;
use ort::session::Session;
use ort::value::Tensor;

use crate::assets;

static RUNTIME: OnceLock<std::result::Result<Environment, String>> = OnceLock::new();

/// Binds ONNX Runtime on first use; later calls return the first outcome.
fn runtime() -> Result<&'static Environment> {
    RUNTIME
        .get_or_init(|| {
            let lib = assets::ONNXRUNTIME.locate().map_err(|e| format!("{e:#}"))?;
            let builder = ort::init_from(&lib).map_err(|e| format!("cannot load {}: {e}", lib.display()))?;
            builder.with_name("folio").with_telemetry(false).build().map_err(|e| format!("ONNX Runtime: {e}"))
        })
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

/// An ONNX model ready to run. Runs are serialised (ONNX Runtime's `Run` needs the session
/// exclusively in `ort`); each run spreads over the session's own threads.
pub struct OnnxModel {
    session: Mutex<Session>,
}

impl OnnxModel {
    /// Loads `path` to run on `threads` threads (at least one).
    pub fn load(path: &Path, threads: usize) -> Result<Self> {
        let env = runtime()?;
        let ort_error = |e: ort::Error<SessionBuilder>| anyhow!("ONNX Runtime: {e}");
        let session = Session::builder(env)
            .map_err(|e| anyhow!("ONNX Runtime: {e}"))?
            .with_intra_threads(threads.max(1))
            .map_err(ort_error)?
            .with_inter_threads(1)
            .map_err(ort_error)?
            // ONNX Runtime's threads spin after each run by default, taking the cores the engine's
            // matrix products need between pages.
            .with_intra_op_spinning(false)
            .map_err(ort_error)?
            .commit_from_file(path)
            .map_err(|e| anyhow!("cannot load the ONNX model {}: {e}", path.display()))?;
        Ok(OnnxModel { session: Mutex::new(session) })
    }

    /// The model's first input: its name and shape (`-1` for a dimension the file leaves open).
    pub fn input(&self) -> Result<(String, Vec<i64>)> {
        let session = self.session.lock().map_err(|_| anyhow!("ONNX session poisoned"))?;
        let first = session.inputs().first().context("the ONNX model has no inputs")?;
        let shape = first.dtype().tensor_shape().map(|s| s.iter().copied().collect()).unwrap_or_default();
        Ok((first.name().to_string(), shape))
    }

    /// A custom metadata entry of the model (e.g. the class names a detector was exported with).
    pub fn metadata(&self, key: &str) -> Result<Option<String>> {
        let session = self.session.lock().map_err(|_| anyhow!("ONNX session poisoned"))?;
        let meta = session.metadata().map_err(|e| anyhow!("ONNX metadata: {e}"))?;
        Ok(meta.custom(key))
    }

    /// Runs the model on one f32 input of `shape`; returns every output as (name, shape, values),
    /// in the model's output order.
    pub fn run_f32(&self, input: &str, shape: &[usize], data: Vec<f32>) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>> {
        let tensor = Tensor::from_array((shape.to_vec(), data)).map_err(|e| anyhow!("ONNX input: {e}"))?;
        let mut session = self.session.lock().map_err(|_| anyhow!("ONNX session poisoned"))?;
        let outputs = session.run(ort::inputs![input => tensor]).map_err(|e| anyhow!("ONNX Runtime: {e}"))?;
        let mut out = Vec::with_capacity(outputs.len());
        for (name, value) in &outputs {
            let (shape, values) =
                value.try_extract_tensor::<f32>().with_context(|| format!("output {name} is not f32"))?;
            let shape = shape.iter().map(|&d| d.max(0) as usize).collect();
            out.push((name.to_string(), shape, values.to_vec()));
        }
        Ok(out)
    }
}
