//! The engine against the reference greedy loop: batch invariance over many mixed-size requests,
//! preemption under a small pool, chunked prefill, aborts, and block accounting.

use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device};
use image::{DynamicImage, Rgb, RgbImage};

use folio::engine::greedy::{generate_greedy, ImageRequest};
use folio::engine::sampling::SamplingParams;
use folio::engine::{Engine, EngineConfig, Event, FinishReason, Request};
use folio::models::paddleocr_vl::{Checkpoint, Task};

fn checkpoint() -> Arc<Checkpoint> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-paddleocr-vl");
    Arc::new(Checkpoint::load(&dir, DType::F32, &Device::Cpu).expect("fixture checkpoint"))
}

/// Deterministic images of assorted sizes with some structure to look at.
fn image(i: usize) -> DynamicImage {
    let sizes = [(140, 56), (45, 130), (224, 200), (60, 60), (300, 40), (33, 90), (120, 120), (90, 28)];
    let (w, h) = sizes[i % sizes.len()];
    let (w, h) = (w + (i / sizes.len()) as u32 * 7, h + (i / sizes.len()) as u32 * 3);
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        let v = ((x * 31 + y * 17 + i as u32 * 97) % 255) as u8;
        Rgb([v, v.wrapping_mul(3), 255 - v])
    }))
}

fn request(i: usize, max_tokens: usize) -> Request {
    Request {
        images: vec![image(i)],
        instruction: Task::Ocr.prompt().into(),
        sampling: SamplingParams::greedy(max_tokens),
    }
}

/// What the plain contiguous-cache loop produces for the same request (the parity-tested path).
fn reference_tokens(ck: &Checkpoint, i: usize, max_tokens: usize) -> Vec<u32> {
    let prepared = ck.images.prepare(&image(i)).unwrap();
    let out = generate_greedy(
        ck,
        &[ImageRequest { image: &prepared, instruction: Task::Ocr.prompt(), max_new_tokens: max_tokens }],
    )
    .unwrap();
    let mut tokens = out.into_iter().next().unwrap().tokens;
    tokens.retain(|t| !ck.prompts.stop_token_ids().contains(t));
    tokens
}

fn run_all(engine: &Engine, n: usize, max_tokens: usize) -> Vec<(Vec<u32>, FinishReason)> {
    let streams: Vec<_> = (0..n).map(|i| engine.submit(request(i, max_tokens)).unwrap()).collect();
    streams
        .into_iter()
        .map(|s| {
            let (_, tokens, reason, _) = s.blocking_collect().unwrap();
            (tokens, reason)
        })
        .collect()
}

fn config(kv_bytes: usize) -> EngineConfig {
    EngineConfig { kv_cache_memory: kv_bytes, ..EngineConfig::default() }
}

#[test]
fn a_single_request_matches_the_reference_loop() {
    let ck = checkpoint();
    let engine = Engine::start(ck.clone(), config(8 << 20)).unwrap();
    let got = run_all(&engine, 1, 24);
    assert_eq!(got[0].0, reference_tokens(&ck, 0, 24));
}

#[test]
fn forty_mixed_requests_at_once_equal_each_alone() {
    let ck = checkpoint();
    let engine = Engine::start(ck.clone(), config(32 << 20)).unwrap();
    let together = run_all(&engine, 40, 24);
    for (i, (tokens, _)) in together.iter().enumerate() {
        assert_eq!(tokens, &reference_tokens(&ck, i, 24), "request {i}");
    }
    let stats = engine.stats();
    assert_eq!(
        stats.generated_tokens as usize,
        together.iter().map(|(t, r)| t.len() + usize::from(*r == FinishReason::Stop)).sum::<usize>()
    );
    assert!(stats.tokens_per_s > 0.0, "{stats:?}");
    assert_eq!(stats.blocks_used, 0, "every block is back in the pool");
    assert_eq!((stats.running, stats.waiting), (0, 0));
}

#[test]
fn a_small_pool_preempts_and_still_completes_everything() {
    let ck = checkpoint();
    // Room for about two sequences at a time: the rest wait or get preempted and recomputed.
    let t = &ck.model.cfg.text;
    let block_bytes = 2 * t.num_hidden_layers * 16 * t.num_key_value_heads * t.head_dim * 4;
    let engine =
        Engine::start(ck.clone(), EngineConfig { max_num_batched_tokens: 512, ..config(30 * block_bytes) }).unwrap();
    let got = run_all(&engine, 12, 40);
    for (i, (tokens, _)) in got.iter().enumerate() {
        assert_eq!(tokens, &reference_tokens(&ck, i, 40), "request {i}");
    }
    let stats = engine.stats();
    assert!(stats.preemptions > 0, "the pool was meant to be too small: {stats:?}");
    assert_eq!(stats.blocks_used, 0);
}

#[test]
fn chunked_prefill_gives_the_same_tokens() {
    let ck = checkpoint();
    let engine = Engine::start(ck.clone(), EngineConfig { max_num_batched_tokens: 7, ..config(16 << 20) }).unwrap();
    let got = run_all(&engine, 4, 16);
    for (i, (tokens, _)) in got.iter().enumerate() {
        assert_eq!(tokens, &reference_tokens(&ck, i, 16), "request {i}");
    }
}

#[test]
fn abort_frees_blocks_and_ends_the_stream() {
    let ck = checkpoint();
    let engine = Engine::start(ck, config(16 << 20)).unwrap();
    let mut stream = engine.submit(request(2, 4000)).unwrap();
    // Wait for the first token, then abort.
    assert!(matches!(stream.blocking_next(), Some(Event::Delta { .. })));
    engine.abort(stream.id).unwrap();
    let mut last = None;
    while let Some(ev) = stream.blocking_next() {
        last = Some(ev);
    }
    assert!(matches!(last, Some(Event::Done { reason: FinishReason::Aborted, .. })), "{last:?}");
    // The engine processes the abort before its next step: once the stream ended, blocks are back.
    let others = run_all(&engine, 1, 2);
    assert_eq!(others.len(), 1);
    assert_eq!(engine.stats().blocks_used, 0);
}

#[test]
fn bad_requests_are_refused_and_the_engine_lives_on() {
    let ck = checkpoint();
    let engine = Engine::start(ck, config(1 << 20)).unwrap();
    let too_long = engine.submit(request(0, 30_000));
    assert!(format!("{:#}", too_long.err().unwrap()).contains("KV cache"));
    let bad = Request { sampling: SamplingParams { temperature: -1.0, ..SamplingParams::greedy(4) }, ..request(0, 4) };
    assert!(engine.submit(bad).is_err());
    let tiny = Request { images: vec![DynamicImage::new_rgb8(1, 400)], ..request(0, 4) };
    assert!(format!("{:#}", engine.submit(tiny).err().unwrap()).contains("aspect ratio"));
    let outside = SamplingParams { suppress_tokens: vec![1, u32::MAX], ..SamplingParams::greedy(4) };
    let outside = engine.submit(Request { sampling: outside, ..request(0, 4) });
    assert!(format!("{:#}", outside.err().unwrap()).contains("outside the vocabulary"));
    assert_eq!(run_all(&engine, 1, 3)[0].0.len(), 3);
}

/// Suppressing the tokens a request would generate makes it generate others, none of them those.
#[test]
fn suppressed_tokens_are_never_generated() {
    let ck = checkpoint();
    let engine = Engine::start(ck.clone(), config(16 << 20)).unwrap();
    for i in 0..4 {
        let usual = reference_tokens(&ck, i, 12);
        let mut sampling = SamplingParams::greedy(12);
        sampling.suppress_tokens = usual.clone();
        let s = engine.submit(Request { sampling, ..request(i, 12) }).unwrap();
        let (_, tokens, ..) = s.blocking_collect().unwrap();
        assert!(!tokens.is_empty());
        assert!(tokens.iter().all(|t| !usual.contains(t)), "request {i}: {usual:?} suppressed, got {tokens:?}");
    }
}

#[test]
fn streamed_text_is_the_decoded_tokens() {
    let ck = checkpoint();
    let engine = Engine::start(ck.clone(), config(16 << 20)).unwrap();
    let streams: Vec<_> = (0..6).map(|i| engine.submit(request(i, 30)).unwrap()).collect();
    for s in streams {
        let (text, tokens, _, usage) = s.blocking_collect().unwrap();
        assert_eq!(text, ck.prompts.decode(&tokens).unwrap());
        assert_eq!(usage.completion_tokens, tokens.len());
    }
}

#[test]
fn stop_strings_end_the_text_before_them() {
    let ck = checkpoint();
    let engine = Engine::start(ck.clone(), config(16 << 20)).unwrap();
    let full = run_all(&engine, 1, 30).remove(0).0;
    let text = ck.prompts.decode(&full).unwrap();
    // Stop at a piece of text the model is known to produce.
    let mid = text.char_indices().map(|(i, _)| i).nth(text.chars().count() / 2).unwrap();
    let stop: String = text[mid..].chars().take(2).collect();
    let cut = text.find(&stop).unwrap();
    let sampling = SamplingParams { stop: vec![stop], ..SamplingParams::greedy(30) };
    let (got, _, reason, _) =
        engine.submit(Request { sampling, ..request(0, 30) }).unwrap().blocking_collect().unwrap();
    assert_eq!(reason, FinishReason::Stop);
    assert_eq!(got, text[..cut]);
}

#[test]
fn dropping_the_engine_ends_in_flight_requests() {
    let engine = Engine::start(checkpoint(), config(16 << 20)).unwrap();
    let mut stream = engine.submit(request(1, 4000)).unwrap();
    assert!(matches!(stream.blocking_next(), Some(Event::Delta { .. })));
    let started = std::time::Instant::now();
    drop(engine);
    assert!(started.elapsed().as_secs() < 5, "shutdown waited for the request to finish");
    let mut last = None;
    while let Some(ev) = stream.blocking_next() {
        last = Some(ev);
    }
    assert!(matches!(last, Some(Event::Done { reason: FinishReason::Aborted, .. })), "{last:?}");
}

#[test]
fn long_generations_under_preemption_match_the_reference() {
    // Long random generations in a small pool: sequences are preempted after generating many
    // tokens, some of which share the image placeholder's id, and are recomputed from them.
    let ck = checkpoint();
    let engine = Engine::start(ck.clone(), config(2 << 20)).unwrap();
    let crop = |i: usize| {
        let (w, h) = [(900, 48), (600, 40), (400, 56), (800, 120), (300, 32), (700, 200), (500, 90), (1000, 60)][i % 8];
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            let v = ((x * 31 + y * 17 + i as u32 * 97) % 255) as u8;
            Rgb([v, v.wrapping_mul(3), 255 - v])
        }))
    };
    let sampling = SamplingParams { repetition_guard: false, ..SamplingParams::greedy(200) };
    let streams: Vec<_> = (0..48)
        .map(|i| {
            let req =
                Request { images: vec![crop(i)], instruction: Task::Ocr.prompt().into(), sampling: sampling.clone() };
            engine.submit(req).unwrap()
        })
        .collect();
    let image_id = ck.prompts.image_token_id();
    let mut saw_placeholder_id = false;
    for (i, s) in streams.into_iter().enumerate() {
        let (_, tokens, _, _) = s.blocking_collect().unwrap_or_else(|e| panic!("request {i}: {e:#}"));
        saw_placeholder_id |= tokens.contains(&image_id);
        let prepared = ck.images.prepare(&crop(i)).unwrap();
        let req = ImageRequest { image: &prepared, instruction: Task::Ocr.prompt(), max_new_tokens: 200 };
        let mut want = generate_greedy(&ck, &[req]).unwrap().remove(0).tokens;
        want.retain(|t| !ck.prompts.stop_token_ids().contains(t));
        assert_eq!(tokens, want, "request {i}");
    }
    assert!(engine.stats().preemptions > 0);
    assert!(saw_placeholder_id, "the scenario this test is for did not occur");
}
