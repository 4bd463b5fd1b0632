//! `folio bench throughput` end to end on the tiny fixture model: both crop kinds run, the serial
//! and batched passes produce the same tokens, and the report carries every figure it promises.

use std::path::Path;
use std::process::Command;

fn throughput(crops: &str) -> serde_json::Value {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-paddleocr-vl");
    let out = Command::new(env!("CARGO_BIN_EXE_folio"))
        .env_remove("FOLIO_MODEL")
        .args(["bench", "throughput", "--requests", "6", "--max-tokens", "8", "--rounds", "2", "--crops", crops])
        .args(["--kv-cache-memory", "16MiB", "--model"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn positive(v: &serde_json::Value, what: &str) -> f64 {
    let x = v.as_f64().unwrap_or_else(|| panic!("{what} missing: {v}"));
    assert!(x.is_finite() && x > 0.0, "{what} = {x}");
    x
}

#[test]
fn throughput_reports_both_modes_on_the_same_tokens() {
    for crops in ["regions", "lines"] {
        let r = throughput(crops);
        let rounds = r["rounds"].as_array().unwrap();
        assert_eq!(rounds.len(), 2, "{crops}");
        for round in rounds {
            let tokens = round["serial"]["tokens"].as_u64().unwrap();
            // Greedy decoding is batch-invariant: batching changes the speed, never the tokens.
            assert_eq!(tokens, round["batched"]["tokens"].as_u64().unwrap(), "{crops}: {round}");
            assert!((6..=6 * 8).contains(&tokens), "{crops}: {tokens} tokens from 6 requests of ≤ 8");
            for key in ["speedup", "speedup_ceiling"] {
                positive(&round[key], key);
            }
            // Null when the decode time of a pass this small is lost in the noise.
            if !round["decode_speedup"].is_null() {
                positive(&round["decode_speedup"], "decode_speedup");
            }
            positive(&round["first_token_only"]["serial_seconds"], "serial first-token seconds");
            positive(&round["first_token_only"]["batched_seconds"], "batched first-token seconds");
        }
        for key in ["speedup_median", "speedup_ceiling_median"] {
            positive(&r[key], key);
        }
        positive(&r["serial"]["tokens_per_s"], "serial tokens/s");
        positive(&r["batched"]["tokens_per_s"], "batched tokens/s");
        // Sampled from the stats as events arrive, so a tiny run may see the pool already empty.
        let fraction = r["kv_peak_fraction"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&fraction), "{fraction}");
    }
}
