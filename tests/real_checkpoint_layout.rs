//! The released PaddleOCR-VL checkpoint's tensors are exactly what our loader asks for.
//!
//! The real weights cannot be downloaded here, so the model is built from the released config.json
//! against a backend that records every (name, shape) requested and hands back a broadcast zero (no
//! memory), and the requests are compared with the checkpoint's tensor list
//! (`tests/fixtures/paddleocr_vl_real_tensors.json`, generated from transformers' model definition
//! with its checkpoint-name conversion inverted; see tools/reference/).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};

use folio::models::paddleocr_vl::{Config, PaddleOcrVl};

type Requests = Arc<Mutex<BTreeMap<String, Vec<usize>>>>;

struct Recorder(Requests);

impl SimpleBackend for Recorder {
    fn get(&self, s: Shape, name: &str, _: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.0.lock().unwrap().insert(name.to_string(), s.dims().to_vec());
        Tensor::zeros((), dtype, dev)?.broadcast_as(s)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("unchecked get of {name}")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.0.lock().unwrap().contains_key(name)
    }
}

/// Tensors the released checkpoint carries that the reference model ignores too.
const IGNORED: [&str; 2] = ["visual.vision_model.head.", "packing_position_embedding"];

#[test]
fn loader_requests_exactly_the_released_tensors() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cfg = Config::from_file(&fixtures.join("paddleocr_vl_real_config.json")).unwrap();
    let requests: Requests = Default::default();
    let vb = VarBuilder::from_backend(Box::new(Recorder(requests.clone())), DType::BF16, Device::Cpu);
    PaddleOcrVl::new(cfg, vb).unwrap();

    let listing: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("paddleocr_vl_real_tensors.json")).unwrap())
            .unwrap();
    let real: BTreeMap<String, Vec<usize>> = serde_json::from_value(listing["tensors"].clone()).unwrap();
    let requested = requests.lock().unwrap().clone();

    for (name, shape) in &requested {
        assert_eq!(real.get(name), Some(shape), "we load {name} {shape:?}; the checkpoint has {:?}", real.get(name));
    }
    let unused: Vec<&String> =
        real.keys().filter(|n| !requested.contains_key(*n) && !IGNORED.iter().any(|p| n.starts_with(p))).collect();
    assert!(unused.is_empty(), "checkpoint tensors we never load: {unused:?}");
    assert!(requested.len() > 400, "only {} tensors requested", requested.len());
}
