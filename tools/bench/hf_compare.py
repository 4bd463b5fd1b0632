#!/usr/bin/env python3
"""folio's engine vs HF transformers `generate` on the same crops and the same checkpoint, in one run.

Runs `folio bench throughput` (which also writes its crops), then feeds those crops to transformers
one request at a time and in static batches, greedy, same number of new tokens. Prints one JSON
report with tokens/s of each and folio's ratio over transformers' best.

    .venv-ref/bin/python tools/bench/hf_compare.py [--model tests/fixtures/tiny-paddleocr-vl]
        [--requests 64] [--max-tokens 24] [--batch 16] [--folio target/release/folio]

Needs the environment of tools/reference (torch, transformers 5.23). Not part of CI.
"""
import argparse, json, subprocess, sys, tempfile, time
from pathlib import Path

import torch
from PIL import Image
from transformers import AutoProcessor, PaddleOCRVLForConditionalGeneration


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tests/fixtures/tiny-paddleocr-vl")
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--folio", default="target/release/folio")
    ap.add_argument("--kv-cache-memory", default="64MiB")
    args = ap.parse_args()

    crops = Path(tempfile.mkdtemp(prefix="folio-crops-"))
    out = subprocess.run(
        [args.folio, "bench", "throughput", "--model", args.model, "--requests", str(args.requests),
         "--max-tokens", str(args.max_tokens), "--kv-cache-memory", args.kv_cache_memory, "--crops", "regions",
         "--save-crops", str(crops)],
        check=True, capture_output=True, text=True)
    folio = json.loads(out.stdout)

    torch.manual_seed(0)
    processor = AutoProcessor.from_pretrained(args.model)
    model = PaddleOCRVLForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32).eval()
    images = [Image.open(p).convert("RGB") for p in sorted(crops.glob("crop_*.png"))]
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "OCR:"}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    gen = dict(max_new_tokens=args.max_tokens, do_sample=False)

    def run(batch: int) -> tuple[int, float]:
        processor.tokenizer.padding_side = "left"
        tokens, start = 0, time.perf_counter()
        for i in range(0, len(images), batch):
            chunk = images[i:i + batch]
            inputs = processor(images=chunk, text=[prompt] * len(chunk), return_tensors="pt", padding=True)
            with torch.inference_mode():
                ids = model.generate(**inputs, **gen)
            new = ids[:, inputs["input_ids"].shape[1]:]
            eos = processor.tokenizer.eos_token_id
            tokens += int(sum(((row != eos) & (row != processor.tokenizer.pad_token_id)).sum() for row in new))
        return tokens, time.perf_counter() - start

    run(1) if len(images) < 2 else run(len(images[:2]))  # warm-up
    t1, s1 = run(1)
    tb, sb = run(args.batch)
    hf_best = max(t1 / s1, tb / sb)
    report = {
        "requests": len(images), "max_tokens": args.max_tokens,
        "folio": folio,
        "transformers": {
            "one_at_a_time": {"tokens": t1, "seconds": s1, "tokens_per_s": t1 / s1},
            f"static_batches_of_{args.batch}": {"tokens": tb, "seconds": sb, "tokens_per_s": tb / sb},
            "versions": {"torch": torch.__version__, "threads": torch.get_num_threads()},
        },
        "folio_batched_over_transformers_best": folio["batched"]["tokens_per_s"] / hf_best,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
