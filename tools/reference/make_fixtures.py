#!/usr/bin/env python3
"""Build the tiny PaddleOCR-VL test checkpoint and the HF-transformers reference outputs.

Everything under ``tests/fixtures/`` that the Rust parity tests read is produced here:

* ``tests/fixtures/tiny-paddleocr-vl/``            tiny random checkpoint in the real HF file layout
* ``tests/fixtures/images/``                        three small deterministic test images
* ``tests/fixtures/tiny-paddleocr-vl-reference/``  reference tensors + metadata from transformers
* ``tests/fixtures/paddleocr_vl_real_tensors.json`` names/shapes of the full-size checkpoint

The script is deterministic (fixed seeds, single-threaded tokenizer training, bitmap font) and
idempotent: every output is rewritten from scratch on each run.  See README.md next to it.
"""

from __future__ import annotations

import os

# Must be set before `tokenizers` / `torch` are imported.
os.environ["RAYON_RS_NUM_CPUS"] = "1"  # single-threaded BPE training -> stable merges
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import PIL  # noqa: E402
import safetensors  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402
from transformers import (  # noqa: E402
    AutoConfig,
    AutoProcessor,
    AutoTokenizer,
    LlamaTokenizer,
    PaddleOCRVLConfig,
    PaddleOCRVLForConditionalGeneration,
)
from transformers.conversion_mapping import get_checkpoint_conversion_mapping  # noqa: E402
from transformers.models.paddleocr_vl.image_processing_pil_paddleocr_vl import smart_resize  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
MODEL_DIR = FIXTURES / "tiny-paddleocr-vl"
REF_DIR = FIXTURES / "tiny-paddleocr-vl-reference"
IMG_DIR = FIXTURES / "images"
REAL_TENSORS_JSON = FIXTURES / "paddleocr_vl_real_tensors.json"
CORPUS = HERE / "tokenizer_corpus.txt"  # Apache-2.0 + BSD licence texts (from /usr/share/common-licenses)

MAX_FIXTURE_BYTES = 5 * 1024 * 1024

# --------------------------------------------------------------------------------------------
# Tokenizer layout
# --------------------------------------------------------------------------------------------
VOCAB_SIZE = 512
BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]  # sentencepiece byte-fallback pieces, ids 0..255
# Special tokens are appended after the byte pieces and the trained BPE pieces, i.e. they do NOT
# sit at the conventional 0/1/2 ids: loaders must read ids from the files.
SPECIAL_TOKENS = [
    "<pad>",
    "<unk>",
    "<s>",
    "</s>",
    "<|begin_of_sentence|>",
    "<|end_of_sentence|>",
    "<|IMAGE_PLACEHOLDER|>",
    "<|video_pad|>",
    "<|IMAGE_START|>",
    "<|IMAGE_END|>",
]
NUM_TRAINED = VOCAB_SIZE - len(BYTE_TOKENS) - len(SPECIAL_TOKENS)
META = "\u2581"  # sentencepiece word-boundary marker

# A few self-written lines so that words of the prompt format occur in the training text.
EXTRA_TRAINING_TEXT = """\
User: OCR:
Assistant: The document contains a table, a chart and some text.
User: Table Recognition:
User: Chart Recognition:
User: Formula Recognition:
Assistant: Optical character recognition turns an image of text into text.
The user asks the assistant to read the page, line by line, and to keep the layout.
"""

TASK_PROMPT = "OCR:"

# Chat template in the style of the real PaddleOCR-VL one. Deliberately uses only plain
# if/for/`~`/string literals/`is defined`/`is string` so minijinja renders it identically.
# Note: transformers passes every tokenizer special token (incl. `image_token`) as a template
# variable, so this template must not define its own variable called `image_token`.
CHAT_TEMPLATE = """\
{#- Tiny PaddleOCR-VL test checkpoint: PaddleOCR-VL style chat template. -#}
{%- if cls_token is defined and cls_token -%}
{{- cls_token -}}
{%- else -%}
{{- "<|begin_of_sentence|>" -}}
{%- endif -%}
{%- for message in messages -%}
{%- if message["role"] == "user" -%}
{{- "User: " -}}
{%- elif message["role"] == "assistant" -%}
{{- "Assistant: " -}}
{%- endif -%}
{%- if message["content"] is string -%}
{{- message["content"] -}}
{%- else -%}
{%- for item in message["content"] -%}
{%- if item["type"] == "image" -%}
{{- "<|IMAGE_START|>" ~ "<|IMAGE_PLACEHOLDER|>" ~ "<|IMAGE_END|>" -}}
{%- endif -%}
{%- endfor -%}
{%- for item in message["content"] -%}
{%- if item["type"] == "text" -%}
{{- item["text"] -}}
{%- endif -%}
{%- endfor -%}
{%- endif -%}
{%- if message["role"] == "assistant" -%}
{%- if eos_token is defined and eos_token -%}
{{- eos_token -}}
{%- else -%}
{{- "</s>" -}}
{%- endif -%}
{%- else -%}
{{- "\\n" -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- "Assistant:\\n" -}}
{%- endif -%}
"""

# --------------------------------------------------------------------------------------------
# Model / processor hyper-parameters
# --------------------------------------------------------------------------------------------
PATCH = 14
MERGE = 2
MIN_PIXELS = 28 * 28 * 4
MAX_PIXELS = 28 * 28 * 48
MAX_NEW_TOKENS = 20
SEED_BASE = 20251121  # first model seed tried; the search below is deterministic
MIN_LOGIT_MARGIN = 1e-2  # every greedy step must win by at least this much (robust parity)
NORM_WEIGHT_STD = 0.1
NORM_BIAS_STD = 0.1
LINEAR_BIAS_STD = 0.02
# transformers' default init (std 0.02 everywhere) gives near-uniform attention and makes the
# image barely matter for a model this small, so matrices are re-drawn with std gain/sqrt(fan_in)
# and embedding tables with EMBED_STD: activations stay O(1) and the greedy continuations differ
# between the three images.
WEIGHT_GAIN = 1.0
EMBED_STD = 0.5

IMAGES = [  # (name, width, height) in the order used everywhere
    ("wide", 140, 56),  # multiple of 28 and within bounds: resize is the identity
    ("tall", 45, 130),  # rounded to a multiple of 28 (-> 56x140, upscaled)
    ("square", 224, 200),  # 224x196 after rounding exceeds max_pixels: downscaled via max_pixels
]

EXTRA_CHECKPOINT_TENSORS = {  # present in the real checkpoint, ignored by the reference
    "visual.vision_model.head.probe": (1, 1, 32),
    "packing_position_embedding.weight": (64, 32),
}


def log(msg: str = "") -> None:
    print(msg, flush=True)


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ============================================================================================
# 1. Tokenizer
# ============================================================================================
def training_lines() -> list[str]:
    text = CORPUS.read_text(encoding="utf-8") + "\n" + EXTRA_TRAINING_TEXT
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line]


def build_tokenizer() -> Tokenizer:
    """Train a small sentencepiece-style (Metaspace + byte-fallback BPE) tokenizer."""
    alphabet = [chr(c) for c in range(33, 127)] + [META, "\n"]
    trainer_tok = Tokenizer(models.BPE())
    # During training split on the marker so merges never cross word boundaries (like spm BPE).
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=NUM_TRAINED,
        min_frequency=2,
        special_tokens=[],
        initial_alphabet=alphabet,
        limit_alphabet=len(alphabet),
        show_progress=False,
    )
    trainer_tok.train_from_iterator(training_lines(), trainer)
    trained = json.loads(trainer_tok.to_str())["model"]
    trained_vocab: dict[str, int] = trained["vocab"]
    assert sorted(trained_vocab.values()) == list(range(len(trained_vocab))), "trained ids not contiguous"
    assert len(trained_vocab) == NUM_TRAINED, (len(trained_vocab), NUM_TRAINED)

    vocab: dict[str, int] = {}
    for tok in BYTE_TOKENS:
        vocab[tok] = len(vocab)
    for tok in sorted(trained_vocab, key=trained_vocab.get):
        assert tok not in vocab
        vocab[tok] = len(vocab)
    for tok in SPECIAL_TOKENS:
        assert tok not in vocab
        vocab[tok] = len(vocab)
    assert len(vocab) == VOCAB_SIZE
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    # Same pipeline as a modern (non-legacy) sentencepiece conversion / transformers' LlamaTokenizer:
    # no normalizer, Metaspace with prepend_scheme="first" and split=False, byte-fallback decoder.
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence(
        [decoders.Replace(META, " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.post_processor = None  # the chat template carries the begin-of-sentence token itself
    tok.add_special_tokens(
        [AddedToken(t, special=True, normalized=False, lstrip=False, rstrip=False, single_word=False) for t in SPECIAL_TOKENS]
    )
    assert tok.get_vocab_size(with_added_tokens=True) == VOCAB_SIZE
    return tok


def tok_id(tok: Tokenizer, token: str) -> int:
    i = tok.token_to_id(token)
    assert i is not None, token
    return i


def write_tokenizer_files(tok: Tokenizer) -> dict[str, int]:
    ids = {t: tok_id(tok, t) for t in SPECIAL_TOKENS}
    tok.save(str(MODEL_DIR / "tokenizer.json"), pretty=True)

    added_tokens_decoder = {
        str(ids[t]): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for t in SPECIAL_TOKENS
    }
    extra = ["<|IMAGE_START|>", "<|IMAGE_END|>", "<|video_pad|>"]
    tokenizer_config = {
        "add_bos_token": False,
        "add_eos_token": False,
        "added_tokens_decoder": added_tokens_decoder,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "cls_token": "<|begin_of_sentence|>",
        "sep_token": "<|end_of_sentence|>",
        # transformers 5.x: every `*_token` key that is not a standard attribute becomes a named
        # "model specific" special token -> `tokenizer.image_token` / `tokenizer.image_token_id`,
        # which PaddleOCRVLProcessor reads in its __init__.
        "image_token": "<|IMAGE_PLACEHOLDER|>",
        "extra_special_tokens": extra,
        "clean_up_tokenization_spaces": False,
        "legacy": False,
        "add_prefix_space": True,
        "model_max_length": 4096,
        "padding_side": "left",
        "split_special_tokens": False,
        "spaces_between_special_tokens": False,
        "tokenizer_class": "LlamaTokenizer",
        "processor_class": "PaddleOCRVLProcessor",
    }
    write_json(MODEL_DIR / "tokenizer_config.json", tokenizer_config)

    special_tokens_map = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "cls_token": "<|begin_of_sentence|>",
        "sep_token": "<|end_of_sentence|>",
        "image_token": "<|IMAGE_PLACEHOLDER|>",
        "additional_special_tokens": ["<|IMAGE_PLACEHOLDER|>"] + extra,
    }
    write_json(MODEL_DIR / "special_tokens_map.json", special_tokens_map)
    (MODEL_DIR / "chat_template.jinja").write_text(CHAT_TEMPLATE, encoding="utf-8")
    return ids


# ============================================================================================
# 2. Config files
# ============================================================================================
def write_config_files(ids: dict[str, int]) -> None:
    config = {
        "architectures": ["PaddleOCRVLForConditionalGeneration"],
        "model_type": "paddleocr_vl",
        "vocab_size": VOCAB_SIZE,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "hidden_act": "silu",
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-05,
        "rope_theta": 500000,
        "rope_scaling": {"mrope_section": [2, 3, 3], "rope_type": "default", "type": "default"},
        "use_bias": False,
        "use_cache": True,
        "tie_word_embeddings": False,
        "pad_token_id": ids["<pad>"],
        "bos_token_id": ids["<s>"],
        "eos_token_id": ids["</s>"],
        "image_token_id": ids["<|IMAGE_PLACEHOLDER|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|IMAGE_START|>"],
        "vision_end_token_id": ids["<|IMAGE_END|>"],
        "torch_dtype": "float32",
        "vision_config": {
            "model_type": "paddleocr_vl_vision",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_channels": 3,
            "image_size": 112,
            "patch_size": PATCH,
            "hidden_act": "gelu_pytorch_tanh",
            "layer_norm_eps": 1e-06,
            "spatial_merge_size": MERGE,
            "temporal_patch_size": 1,
        },
    }
    assert sum(config["rope_scaling"]["mrope_section"]) * 2 == config["head_dim"]
    write_json(MODEL_DIR / "config.json", config)

    preprocessor = {
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "image_processor_type": "PaddleOCRVLImageProcessor",
        "max_pixels": MAX_PIXELS,
        "min_pixels": MIN_PIXELS,
        "merge_size": MERGE,
        "patch_size": PATCH,
        "processor_class": "PaddleOCRVLProcessor",
        "resample": 3,
        "rescale_factor": 1 / 255,
        "temporal_patch_size": 1,
    }
    write_json(MODEL_DIR / "preprocessor_config.json", preprocessor)

    generation = {
        "bos_token_id": ids["<s>"],
        "eos_token_id": ids["</s>"],
        "pad_token_id": ids["<pad>"],
        "use_cache": True,
    }
    write_json(MODEL_DIR / "generation_config.json", generation)


def load_config() -> PaddleOCRVLConfig:
    """Load config.json the way from_pretrained does, and check the flat form parsed correctly."""
    cfg = AutoConfig.from_pretrained(MODEL_DIR)
    raw = json.loads((MODEL_DIR / "config.json").read_text())
    tc, vc = cfg.text_config, cfg.vision_config
    for key in [
        "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "head_dim", "hidden_act", "max_position_embeddings", "rms_norm_eps",
        "use_bias", "pad_token_id", "bos_token_id", "eos_token_id",
    ]:  # fmt: skip
        assert getattr(tc, key) == raw[key], (key, getattr(tc, key), raw[key])
    assert tc.rope_parameters["rope_theta"] == raw["rope_theta"], tc.rope_parameters
    assert tc.rope_parameters["rope_type"] == "default", tc.rope_parameters
    assert list(tc.rope_parameters["mrope_section"]) == raw["rope_scaling"]["mrope_section"], tc.rope_parameters
    for key, value in raw["vision_config"].items():
        if key in ("model_type", "temporal_patch_size"):
            continue
        assert getattr(vc, key) == value, (key, getattr(vc, key), value)
    for key in ["image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"]:
        assert getattr(cfg, key) == raw[key], key

    # QUIRK (transformers 5.23): for a flat (hub-style) config, `tie_word_embeddings` is consumed
    # by the outer PaddleOCRVLConfig field and never reaches text_config, whose default is True;
    # the BC hook at the end of PaddleOCRVLConfig.__post_init__ then flips the outer value back to
    # True.  from_pretrained() survives this (it refuses to tie when the checkpoint holds both
    # tensors with different values, and warns), but a freshly constructed model would be tied,
    # so the model built here uses the value the file actually states.
    quirk = {"outer": cfg.tie_word_embeddings, "text": tc.tie_word_embeddings}
    cfg.tie_word_embeddings = raw["tie_word_embeddings"]
    tc.tie_word_embeddings = raw["tie_word_embeddings"]
    cfg._tie_quirk = quirk  # remembered for the summary
    return cfg


# ============================================================================================
# 3. Images
# ============================================================================================
def gradient(width: int, height: int, c0, c1, vertical: bool) -> Image.Image:
    t = np.linspace(0.0, 1.0, height if vertical else width, dtype=np.float64)
    col = (np.outer(1 - t, c0) + np.outer(t, c1)).round().astype(np.uint8)  # (n, 3)
    if vertical:
        arr = np.repeat(col[:, None, :], width, axis=1)
    else:
        arr = np.repeat(col[None, :, :], height, axis=0)
    return Image.fromarray(arr, mode="RGB")


def make_images() -> dict[str, Path]:
    IMG_DIR.mkdir(parents=True, exist_ok=True)
    font = ImageFont.load_default_imagefont()  # bitmap font bundled with Pillow: platform independent
    paths = {}
    for name, w, h in IMAGES:
        if name == "wide":
            img = gradient(w, h, (250, 250, 240), (200, 220, 255), vertical=False)
            d = ImageDraw.Draw(img)
            d.rectangle([3, 3, w - 4, h - 4], outline=(20, 20, 120), width=2)
            d.text((10, 8), "Hello folio 42", fill=(0, 0, 0), font=font)
            d.text((10, 26), "OCR: wide.png", fill=(150, 0, 0), font=font)
            d.line([(10, 44), (130, 44)], fill=(0, 120, 0), width=3)
            d.ellipse([112, 20, 132, 40], fill=(255, 160, 0), outline=(0, 0, 0))
        elif name == "tall":
            img = gradient(w, h, (255, 255, 255), (180, 200, 160), vertical=True)
            d = ImageDraw.Draw(img)
            for i, ch in enumerate("TALL"):
                d.text((18, 6 + 14 * i), ch, fill=(0, 0, 90), font=font)
            d.ellipse([6, 66, 38, 98], fill=(200, 30, 30), outline=(0, 0, 0))
            d.rectangle([4, 106, 40, 124], fill=(30, 30, 200))
            d.line([(0, 0), (w - 1, h - 1)], fill=(90, 90, 90), width=1)
        else:
            img = gradient(w, h, (235, 245, 255), (255, 235, 215), vertical=True)
            d = ImageDraw.Draw(img)
            for x in range(0, w, 28):
                d.line([(x, 0), (x, h - 1)], fill=(210, 210, 210), width=1)
            for y in range(0, h, 28):
                d.line([(0, y), (w - 1, y)], fill=(210, 210, 210), width=1)
            d.text((12, 10), "Invoice No. 1234", fill=(0, 0, 0), font=font)
            d.text((12, 26), "Total: 56.78 EUR", fill=(0, 0, 0), font=font)
            d.text((12, 42), "square.png", fill=(0, 90, 0), font=font)
            d.ellipse([120, 70, 210, 160], fill=(60, 160, 60), outline=(0, 0, 0), width=2)
            d.polygon([(20, 180), (80, 80), (110, 180)], fill=(230, 120, 20), outline=(0, 0, 0))
            d.rectangle([130, 170, 215, 190], fill=(20, 20, 20))
            d.text((136, 174), "TOTAL", fill=(255, 255, 255), font=font)
        assert img.size == (w, h)
        path = IMG_DIR / f"{name}.png"
        img.save(path, format="PNG", optimize=False, compress_level=9)
        paths[name] = path
    return paths


# ============================================================================================
# 4. Model weights
# ============================================================================================
def internal_to_checkpoint(name: str) -> str:
    """Inverse of transformers' conversion_mapping["paddleocr_vl"] (checkpoint -> internal)."""
    for internal_prefix, ckpt_prefix in (
        ("model.projector.", "mlp_AR."),
        ("model.visual.", "visual."),
        ("model.language_model.", "model."),
    ):
        if name.startswith(internal_prefix):
            return ckpt_prefix + name[len(internal_prefix):]
    if name == "lm_head.weight":
        return name
    raise ValueError(f"unexpected internal parameter name {name}")


def checkpoint_to_internal(name: str) -> str:
    """Apply transformers' own renaming rules (forward direction) to a checkpoint name."""
    for rule in get_checkpoint_conversion_mapping("paddleocr_vl"):
        assert type(rule).__name__ == "WeightRenaming", rule
        for src, dst in zip(rule.source_patterns, rule.target_patterns):
            new = re.sub(src, dst, name)
            if new != name:
                return new
    return name


def is_norm(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.LayerNorm) or type(module).__name__.endswith("RMSNorm")


def build_model(config: PaddleOCRVLConfig, seed: int) -> PaddleOCRVLForConditionalGeneration:
    torch.manual_seed(seed)
    model = PaddleOCRVLForConditionalGeneration(config).to(torch.float32)
    gen = torch.Generator().manual_seed(seed ^ 0x5EED)
    norm_params = {}
    for mod_name, module in model.named_modules():
        if is_norm(module):
            for pname, p in module.named_parameters(recurse=False):
                norm_params[f"{mod_name}.{pname}"] = pname
    kinds = {}
    for mod_name, module in model.named_modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            kinds[f"{mod_name}.weight"] = ("matrix", module.weight[0].numel())  # fan_in
        elif isinstance(module, torch.nn.Embedding):
            kinds[f"{mod_name}.weight"] = ("embedding", None)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if name in kinds:
                kind, fan_in = kinds[name]
                std = WEIGHT_GAIN / fan_in**0.5 if kind == "matrix" else EMBED_STD
                p.copy_(std * torch.randn(p.shape, generator=gen, dtype=torch.float32))
            elif name in norm_params:
                noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
                if norm_params[name] == "weight":
                    p.copy_(1.0 + NORM_WEIGHT_STD * noise)
                else:
                    p.copy_(NORM_BIAS_STD * noise)
            elif name.endswith(".bias"):
                p.copy_(LINEAR_BIAS_STD * torch.randn(p.shape, generator=gen, dtype=torch.float32))
            else:
                raise AssertionError(f"parameter {name} not re-initialised")
    model.eval()
    return model


def checkpoint_state_dict(model) -> dict[str, torch.Tensor]:
    sd = {}
    for name, tensor in model.state_dict().items():
        ck = internal_to_checkpoint(name)
        assert checkpoint_to_internal(ck) == name, (name, ck, checkpoint_to_internal(ck))
        assert ck not in sd
        sd[ck] = tensor.detach().to(torch.float32).contiguous().clone()
    gen = torch.Generator().manual_seed(7)
    for name, shape in EXTRA_CHECKPOINT_TENSORS.items():
        sd[name] = (0.02 * torch.randn(shape, generator=gen)).contiguous()
    return sd


# ============================================================================================
# 5. Reference computations
# ============================================================================================
def messages_for(image: Image.Image) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": TASK_PROMPT}]}]


def load_image(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def processor_inputs(processor, image: Image.Image):
    return processor.apply_chat_template(
        messages_for(image), tokenize=True, add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )


@torch.no_grad()
def greedy_with_margins(model, inputs, special_ids: set[int]):
    out = model.generate(
        **inputs,
        max_new_tokens=MAX_NEW_TOKENS,
        do_sample=False,
        return_dict_in_generate=True,
        output_logits=True,
    )
    prompt_len = inputs["input_ids"].shape[1]
    new_tokens = out.sequences[0, prompt_len:]
    margins = []
    for step_logits in out.logits:
        top2 = torch.topk(step_logits[0].float(), 2).values
        margins.append(float(top2[0] - top2[1]))
    ok = len(new_tokens) == MAX_NEW_TOKENS and not any(int(t) in special_ids for t in new_tokens)
    return new_tokens, min(margins) if margins else 0.0, ok


def search_seed(config, processor, images, special_ids) -> tuple[int, int]:
    for attempt in range(200):
        seed = SEED_BASE + attempt
        model = build_model(config, seed)
        good = True
        worst = float("inf")
        continuations = []
        for img in images:
            inputs = processor_inputs(processor, img)
            tokens, margin, ok = greedy_with_margins(model, inputs, special_ids)
            worst = min(worst, margin)
            continuations.append(tuple(tokens.tolist()))
            if not ok or margin < MIN_LOGIT_MARGIN:
                good = False
                break
        # the image must matter: the three continuations differ pairwise from the first token on
        if good and len({c[0] for c in continuations}) != len(continuations):
            good = False
        log(f"  seed {seed}: {'accepted' if good else 'rejected'} (min top-2 logit margin so far {worst:.2e})")
        if good:
            return seed, attempt
    raise RuntimeError("no acceptable seed found")


@torch.no_grad()
def manual_greedy(model, inputs, steps: int) -> torch.Tensor:
    """Cache-free greedy decoding with explicitly computed 3D positions (cross-check of generate)."""
    ids = inputs["input_ids"]
    mm = inputs["mm_token_type_ids"]
    pos, deltas = model.model.get_rope_index(
        ids, mm_token_type_ids=mm, image_grid_thw=inputs["image_grid_thw"], attention_mask=inputs["attention_mask"]
    )
    new = []
    for _ in range(steps):
        logits = model(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            position_ids=pos,
            pixel_values=inputs["pixel_values"],
            image_grid_thw=inputs["image_grid_thw"],
            mm_token_type_ids=mm,
            use_cache=False,
        ).logits
        nxt = logits[0, -1].argmax()
        new.append(int(nxt))
        ids = torch.cat([ids, nxt.view(1, 1)], dim=1)
        mm = torch.cat([mm, torch.zeros((1, 1), dtype=mm.dtype)], dim=1)
        # decode positions: text positions continue from max(previous position) + 1 on all 3 axes
        nxt_pos = pos[:, :, -1:].max() + 1
        pos = torch.cat([pos, nxt_pos.view(1, 1, 1).expand(3, 1, 1)], dim=2)
    return torch.tensor(new, dtype=torch.long)


# ============================================================================================
# 6. Real checkpoint tensor list
# ============================================================================================
def write_real_tensor_list() -> dict:
    cfg = PaddleOCRVLConfig(
        text_config={"tie_word_embeddings": False},
        tie_word_embeddings=False,
    )
    assert not cfg.tie_word_embeddings and not cfg.text_config.tie_word_embeddings
    with torch.device("meta"):
        model = PaddleOCRVLForConditionalGeneration(cfg)
    tensors = {}
    for name, t in model.state_dict().items():
        ck = internal_to_checkpoint(name)
        assert checkpoint_to_internal(ck) == name, (name, ck)
        tensors[ck] = list(t.shape)
    tensors = dict(sorted(tensors.items()))
    v, tx = cfg.vision_config, cfg.text_config
    # sanity checks against the published architecture
    assert tensors["lm_head.weight"] == [103424, 1024]
    assert tensors["model.embed_tokens.weight"] == [103424, 1024]
    assert tensors["visual.vision_model.embeddings.position_embedding.weight"] == [729, 1152]
    assert tensors["visual.vision_model.embeddings.patch_embedding.weight"] == [1152, 3, 14, 14]
    assert tensors["mlp_AR.linear_1.weight"] == [4608, 4608]
    assert tensors["mlp_AR.linear_2.weight"] == [1024, 4608]
    assert tensors["model.layers.17.self_attn.k_proj.weight"] == [256, 1024]
    assert tensors["visual.vision_model.encoder.layers.26.mlp.fc1.weight"] == [4304, 1152]
    doc = {
        "source": (
            f"transformers {transformers.__version__}: PaddleOCRVLForConditionalGeneration(PaddleOCRVLConfig("
            "tie_word_embeddings=False)) instantiated on the meta device; state_dict names mapped back to the "
            "PaddlePaddle/PaddleOCR-VL checkpoint naming by inverting conversion_mapping['paddleocr_vl'] "
            "(model.projector.* -> mlp_AR.*, model.visual.* -> visual.*, model.language_model.* -> model.*). "
            "Generated by tools/reference/make_fixtures.py."
        ),
        "config": {
            "vision": {
                "hidden_size": v.hidden_size, "intermediate_size": v.intermediate_size,
                "num_hidden_layers": v.num_hidden_layers, "num_attention_heads": v.num_attention_heads,
                "image_size": v.image_size, "patch_size": v.patch_size, "spatial_merge_size": v.spatial_merge_size,
            },
            "text": {
                "vocab_size": tx.vocab_size, "hidden_size": tx.hidden_size, "intermediate_size": tx.intermediate_size,
                "num_hidden_layers": tx.num_hidden_layers, "num_attention_heads": tx.num_attention_heads,
                "num_key_value_heads": tx.num_key_value_heads, "head_dim": tx.head_dim,
            },
        },  # fmt: skip
        "ignored_checkpoint_prefixes": {
            "note": (
                "The real checkpoint also carries tensors under these prefixes; transformers ignores them "
                "(PaddleOCRVLForConditionalGeneration._keys_to_ignore_on_load_unexpected). They are not listed "
                "in `tensors` because the reference model does not define them."
            ),
            "prefixes": ["packing_position_embedding", "visual.vision_model.head"],
            "transformers_keys_to_ignore_on_load_unexpected": list(
                PaddleOCRVLForConditionalGeneration._keys_to_ignore_on_load_unexpected
            ),
        },
        "num_tensors": len(tensors),
        "num_parameters": int(sum(int(np.prod(s)) for s in tensors.values())),
        "tensors": tensors,
    }
    # one tensor per line: "name": [shape]
    text = json.dumps({k: v for k, v in doc.items() if k != "tensors"}, indent=2, ensure_ascii=False)
    rows = ",\n".join(f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in tensors.items())
    text = text[: text.rfind("}")].rstrip() + ',\n  "tensors": {\n' + rows + "\n  }\n}\n"
    assert json.loads(text) == doc
    REAL_TENSORS_JSON.write_text(text, encoding="utf-8")
    return doc


# ============================================================================================
# main
# ============================================================================================
def main() -> int:
    log(f"python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"tokenizers {tokenizers.__version__}, safetensors {safetensors.__version__}, pillow {PIL.__version__}, "
        f"numpy {np.__version__}")  # fmt: skip

    for d in (MODEL_DIR, REF_DIR, IMG_DIR):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)

    # ---- tokenizer + configs ------------------------------------------------------------
    log("[1/6] tokenizer")
    raw_tok = build_tokenizer()
    ids = write_tokenizer_files(raw_tok)
    write_config_files(ids)
    for t, i in ids.items():
        log(f"  {t:24s} id {i}")

    # Re-load the tokenizer file with the `tokenizers` library (what the Rust side uses).
    file_tok = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    hf_tok = AutoTokenizer.from_pretrained(MODEL_DIR)
    assert len(hf_tok) == VOCAB_SIZE, len(hf_tok)
    assert hf_tok.image_token == "<|IMAGE_PLACEHOLDER|>" and hf_tok.image_token_id == ids["<|IMAGE_PLACEHOLDER|>"]
    for attr, tok in [("bos_token", "<s>"), ("eos_token", "</s>"), ("pad_token", "<pad>"), ("unk_token", "<unk>"),
                      ("cls_token", "<|begin_of_sentence|>"), ("sep_token", "<|end_of_sentence|>")]:  # fmt: skip
        assert getattr(hf_tok, attr) == tok and getattr(hf_tok, attr + "_id") == ids[tok], attr
    samples = [
        "Hello world! This is folio.",
        "<|begin_of_sentence|>User: <|IMAGE_START|><|IMAGE_PLACEHOLDER|><|IMAGE_END|>OCR:\nAssistant:\n",
        "  leading spaces, tabs\tand UTF-8: caf\u00e9 \u00fc\u00df \u4e2d\u6587 \U0001f600",
        "Licensed under the Apache License, Version 2.0",
    ]
    # tokenizer_config.json names LlamaTokenizer (like the hub repo), but AutoTokenizer forces
    # TokenizersBackend for paddleocr_vl; LlamaTokenizer rebuilds the pipeline from vocab/merges.
    # The tokenizer.json pipeline is chosen so that all three agree.
    llama_tok = LlamaTokenizer.from_pretrained(MODEL_DIR)
    tokenizer_samples = []
    for s in samples:
        enc_file = file_tok.encode(s, add_special_tokens=True).ids
        enc_hf = hf_tok(s)["input_ids"]
        assert enc_file == enc_hf, (s, enc_file, enc_hf)
        assert llama_tok(s)["input_ids"] == enc_hf, (s, llama_tok(s)["input_ids"], enc_hf)
        assert hf_tok.decode(enc_hf) == file_tok.decode(enc_file, skip_special_tokens=False)
        tokenizer_samples.append({
            "text": s,
            "ids": enc_hf,
            "tokens": hf_tok.convert_ids_to_tokens(enc_hf),
            "decoded": hf_tok.decode(enc_hf, skip_special_tokens=False),
            "decoded_skip_special": hf_tok.decode(enc_hf, skip_special_tokens=True),
        })  # fmt: skip
    log(f"  AutoTokenizer class: {type(hf_tok).__name__}, len {len(hf_tok)}, "
        f"image_token {hf_tok.image_token!r} -> {hf_tok.image_token_id}")  # fmt: skip

    # ---- config ---------------------------------------------------------------------------
    log("[2/6] config")
    config = load_config()
    log(f"  text_config parsed from flat config.json: hidden {config.text_config.hidden_size}, layers "
        f"{config.text_config.num_hidden_layers}, heads {config.text_config.num_attention_heads}/"
        f"{config.text_config.num_key_value_heads}, head_dim {config.text_config.head_dim}, "
        f"rope {config.text_config.rope_parameters}")  # fmt: skip
    log(f"  vision rope_parameters (not in config.json, transformers default): {config.vision_config.rope_parameters}")
    log(f"  tie_word_embeddings as parsed by transformers: {config._tie_quirk} -> forced False")

    # ---- images + processor ----------------------------------------------------------------
    log("[3/6] images + processor")
    paths = make_images()
    images = [load_image(paths[name]) for name, _, _ in IMAGES]
    processor = AutoProcessor.from_pretrained(MODEL_DIR)
    log(f"  processor {type(processor).__name__}, image processor {type(processor.image_processor).__name__}, "
        f"tokenizer {type(processor.tokenizer).__name__}")  # fmt: skip
    assert processor.image_token == "<|IMAGE_PLACEHOLDER|>"
    assert processor.image_token_id == ids["<|IMAGE_PLACEHOLDER|>"]
    special_ids = set(ids.values())

    rendered = processor.apply_chat_template(messages_for(images[0]), tokenize=False, add_generation_prompt=True)
    expected = "<|begin_of_sentence|>User: <|IMAGE_START|><|IMAGE_PLACEHOLDER|><|IMAGE_END|>OCR:\nAssistant:\n"
    assert rendered == expected, repr(rendered)
    rendered_no_gen = processor.apply_chat_template(
        messages_for(images[0]) + [{"role": "assistant", "content": [{"type": "text", "text": "Hi"}]}],
        tokenize=False,
    )
    assert rendered_no_gen == expected[: -len("Assistant:\n")] + "Assistant: Hi</s>", repr(rendered_no_gen)
    try:  # optional: the Rust template engine (minijinja's Python binding) must render the same string
        import minijinja  # type: ignore

        env = minijinja.Environment(templates={"chat": CHAT_TEMPLATE})
        plain_msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": TASK_PROMPT}]}]
        assert env.render_template("chat", messages=plain_msgs, add_generation_prompt=True) == expected
        log("  minijinja renders the chat template identically")
    except ImportError:
        log("  (minijinja not installed: skipped the optional minijinja rendering check)")

    # ---- seed search, save, reload -----------------------------------------------------------
    log("[4/6] model (seed search for robust greedy decoding)")
    seed, attempts = search_seed(config, processor, images, special_ids)
    model = build_model(config, seed)
    sd = checkpoint_state_dict(model)
    save_file(sd, str(MODEL_DIR / "model.safetensors"), metadata={"format": "pt"})
    del model

    # Plain hub-style load (no config override): must give back exactly the saved weights.
    reloaded, info = PaddleOCRVLForConditionalGeneration.from_pretrained(
        MODEL_DIR, attn_implementation="eager", dtype=torch.float32, output_loading_info=True
    )
    reloaded.eval()
    assert not info["missing_keys"], info["missing_keys"]
    assert not info.get("mismatched_keys"), info.get("mismatched_keys")
    assert not info.get("error_msgs"), info.get("error_msgs")
    unexpected = sorted(info["unexpected_keys"])
    assert all(any(p in k for p in ("packing_position_embedding", "vision_model.head")) for k in unexpected), unexpected
    on_disk = load_file(str(MODEL_DIR / "model.safetensors"))
    seen = set()
    for name, p in reloaded.state_dict().items():
        ck = internal_to_checkpoint(name)
        assert ck in on_disk, ck
        assert p.dtype == torch.float32, (name, p.dtype)
        assert torch.equal(p, on_disk[ck]), f"parameter {name} differs from saved {ck}"
        seen.add(ck)
    leftover = sorted(set(on_disk) - seen)
    assert leftover == sorted(EXTRA_CHECKPOINT_TENSORS), leftover
    assert not torch.equal(on_disk["lm_head.weight"], on_disk["model.embed_tokens.weight"])
    assert reloaded.lm_head.weight.data_ptr() != reloaded.model.language_model.embed_tokens.weight.data_ptr()
    assert reloaded.config._attn_implementation == "eager"
    log(f"  seed {seed} (attempt {attempts}); reloaded {len(seen)} tensors, unexpected (ignored) {unexpected}")

    # ---- reference outputs ---------------------------------------------------------------
    log("[5/6] reference outputs")
    ref: dict[str, torch.Tensor] = {}
    per_image = []
    vision_single = []
    for (name, w, h), img in zip(IMAGES, images):
        inputs = processor_inputs(processor, img)
        pv = inputs["pixel_values"]
        grid = inputs["image_grid_thw"]
        input_ids = inputs["input_ids"]
        assert pv.dtype == torch.float32 and pv.dim() == 4 and tuple(pv.shape[1:]) == (3, PATCH, PATCH), pv.shape
        assert grid.shape == (1, 3) and int(grid[0, 0]) == 1
        n_patches = int(grid.prod())
        n_img_tokens = n_patches // (MERGE * MERGE)
        assert pv.shape[0] == n_patches
        assert int((input_ids == ids["<|IMAGE_PLACEHOLDER|>"]).sum()) == n_img_tokens
        assert torch.equal(inputs["mm_token_type_ids"][0].bool(), input_ids[0] == ids["<|IMAGE_PLACEHOLDER|>"])
        assert bool(inputs["attention_mask"].all())
        # the processor's tokenization equals raw tokenizers-lib tokenization of the expanded text
        expanded = rendered.replace("<|IMAGE_PLACEHOLDER|>", "<|IMAGE_PLACEHOLDER|>" * n_img_tokens)
        assert file_tok.encode(expanded, add_special_tokens=True).ids == input_ids[0].tolist()

        rh, rw = smart_resize(h, w, factor=PATCH * MERGE, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
        assert (int(grid[0, 1]) * PATCH, int(grid[0, 2]) * PATCH) == (rh, rw)

        with torch.no_grad():
            vis = reloaded.model.visual(pixel_values=pv.unsqueeze(0), grid_thw=grid).last_hidden_state
            proj = reloaded.model.projector(vis, grid)
            feats = reloaded.model.get_image_features(pv, grid, return_dict=True)
            assert torch.equal(torch.cat(feats.pooler_output), proj)
            pos, delta = reloaded.model.get_rope_index(
                input_ids,
                mm_token_type_ids=inputs["mm_token_type_ids"],
                image_grid_thw=grid,
                attention_mask=inputs["attention_mask"],
            )
            out = reloaded(**inputs, use_cache=False)
            # forward() must have used exactly these positions: recompute logits with them passed in
            out2 = reloaded(**inputs, position_ids=pos, use_cache=False)
            assert torch.equal(out.logits, out2.logits)
        assert vis.shape == (n_patches, 32) and proj.shape == (n_img_tokens, 64)
        L = input_ids.shape[1]
        assert pos.shape == (3, 1, L) and out.logits.shape == (1, L, VOCAB_SIZE)
        assert int(delta[0, 0]) == int(pos.max()) + 1 - L

        new_tokens, margin, ok = greedy_with_margins(reloaded, inputs, special_ids)
        assert ok and margin >= MIN_LOGIT_MARGIN, (name, new_tokens, margin)
        assert len(new_tokens) == MAX_NEW_TOKENS
        manual = manual_greedy(reloaded, inputs, MAX_NEW_TOKENS)
        assert torch.equal(manual, new_tokens.cpu()), (manual, new_tokens)
        text = processor.batch_decode(new_tokens.view(1, -1), skip_special_tokens=True)[0]

        ref[f"{name}.pixel_values"] = pv.reshape(n_patches, -1).contiguous()
        ref[f"{name}.grid_thw"] = grid[0].to(torch.int64).contiguous()
        ref[f"{name}.vision_features"] = vis.contiguous()
        ref[f"{name}.projector"] = proj.contiguous()
        ref[f"{name}.input_ids"] = input_ids[0].to(torch.int64).contiguous()
        ref[f"{name}.position_ids"] = pos[:, 0, :].to(torch.int64).contiguous()
        ref[f"{name}.rope_delta"] = delta.reshape(1).to(torch.int64).contiguous()
        ref[f"{name}.prompt_logits"] = out.logits[0].contiguous()
        ref[f"{name}.greedy_tokens"] = new_tokens.to(torch.int64).contiguous()
        vision_single.append(vis)

        img_start = int((input_ids[0] == ids["<|IMAGE_PLACEHOLDER|>"]).nonzero()[0])
        per_image.append({
            "name": name,
            "file": f"images/{name}.png",
            "original_size": {"width": w, "height": h},
            "resized": {"height": rh, "width": rw},
            "grid_thw": grid[0].tolist(),
            "num_patches": n_patches,
            "num_image_tokens": n_img_tokens,
            "image_token_offset": img_start,
            "seq_len": L,
            "rope_delta": int(delta[0, 0]),
            "max_position": int(pos.max()),
            "greedy_tokens": new_tokens.tolist(),
            "greedy_token_strings": processor.tokenizer.convert_ids_to_tokens(new_tokens.tolist()),
            "greedy_text": text,
            "min_top2_logit_margin": margin,
        })  # fmt: skip
        log(f"  {name:6s} {w}x{h} -> resized {rw}x{rh}, grid_thw {grid[0].tolist()}, patches {n_patches}, "
            f"image tokens {n_img_tokens}, seq len {L}, rope delta {int(delta[0, 0])}, margin {margin:.3e}")  # fmt: skip
        log(f"         greedy {new_tokens.tolist()} -> {text!r}")

    # batched (packed) vision tower call
    pv_all = torch.cat([ref[f"{n}.pixel_values"].reshape(-1, 3, PATCH, PATCH) for n, _, _ in IMAGES])
    grid_all = torch.stack([ref[f"{n}.grid_thw"] for n, _, _ in IMAGES])
    batch_inputs = processor.image_processor(images=images, return_tensors="pt")
    assert torch.equal(batch_inputs["pixel_values"], pv_all) and torch.equal(batch_inputs["image_grid_thw"], grid_all)
    with torch.no_grad():
        vis_all = reloaded.model.visual(pixel_values=pv_all.unsqueeze(0), grid_thw=grid_all).last_hidden_state
    single_cat = torch.cat(vision_single)
    max_diff = float((vis_all - single_cat).abs().max())
    assert torch.allclose(vis_all, single_cat, atol=1e-5, rtol=0), max_diff
    ref["batched.vision_features"] = vis_all.contiguous()
    log(f"  batched vision features {tuple(vis_all.shape)}, max |batched - single| = {max_diff:.2e}")

    save_file(ref, str(REF_DIR / "reference.safetensors"), metadata={"format": "pt"})

    smart_cases = []
    for hh, ww in [(56, 140), (130, 45), (200, 224), (180, 200), (70, 70), (42, 98), (14, 14), (10, 300),
                   (300, 10), (28, 28), (1000, 1000), (196, 224), (112, 84), (54, 54), (4000, 30)]:  # fmt: skip
        try:
            rh, rw = smart_resize(hh, ww, factor=PATCH * MERGE, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
            smart_cases.append({"height": hh, "width": ww, "resized_height": rh, "resized_width": rw})
        except ValueError as e:
            smart_cases.append({"height": hh, "width": ww, "error": str(e)})

    reference_json = {
        "generator": "tools/reference/make_fixtures.py",
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__,
            "pillow": PIL.__version__,
            "numpy": np.__version__,
        },
        "model_dir": "tiny-paddleocr-vl",
        "model_seed": seed,
        "attn_implementation": "eager",
        "dtype": "float32",
        "task_prompt": TASK_PROMPT,
        "messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": TASK_PROMPT}]}],
        "add_generation_prompt": True,
        "rendered_prompt": rendered,
        "max_new_tokens": MAX_NEW_TOKENS,
        "do_sample": False,
        "special_token_ids": ids,
        "vocab_size": VOCAB_SIZE,
        "images": per_image,
        "tensors": {
            "per_image": {
                "{name}.pixel_values": "float32 (N, 3*14*14): processor patches (N,3,14,14) flattened (c, y, x)",
                "{name}.grid_thw": "int64 (3,)",
                "{name}.vision_features": "float32 (N, 32): vision tower output after post_layernorm, image alone",
                "{name}.projector": "float32 (N/4, 64): mlp_AR projector output",
                "{name}.input_ids": "int64 (L,): processor.apply_chat_template(tokenize=True) ids",
                "{name}.position_ids": "int64 (3, L): get_rope_index (t, h, w) positions of the prompt",
                "{name}.rope_delta": "int64 (1,): max(position)+1-L; decode step k (0-based) uses L+k+delta on all 3 axes",
                "{name}.prompt_logits": "float32 (L, vocab): logits of the full prompt forward",
                "{name}.greedy_tokens": "int64 (20,): generate(max_new_tokens=20, do_sample=False) new tokens",
            },
            "batched.vision_features": "float32 (sum N, 32): vision tower on all three images packed in one call",
        },
        "batched_vs_single_max_abs_diff": max_diff,
        "tokenizer_samples": tokenizer_samples,
        "smart_resize": {
            "factor": PATCH * MERGE,
            "min_pixels": MIN_PIXELS,
            "max_pixels": MAX_PIXELS,
            "note": "Python round() is round-half-to-even; computed with transformers' smart_resize",
            "cases": smart_cases,
        },
        "quirks": {
            "tie_word_embeddings_parsed_by_transformers": config._tie_quirk,
            "tie_word_embeddings_used": False,
            "vision_rope_parameters_default": dict(config.vision_config.rope_parameters),
            "projector_pre_norm_eps": 1e-05,
            "projector_activation": "GELU (exact erf)",
        },
    }
    write_json(REF_DIR / "reference.json", reference_json)

    # ---- real checkpoint tensor list --------------------------------------------------------------
    log("[6/6] real checkpoint tensor list")
    real = write_real_tensor_list()
    log(f"  {real['num_tensors']} tensors, {real['num_parameters']:,} parameters")

    # ---- summary -------------------------------------------------------------------------------
    log("")
    log("Summary")
    outputs = sorted(p for d in (MODEL_DIR, REF_DIR, IMG_DIR) for p in d.rglob("*") if p.is_file())
    outputs.append(REAL_TENSORS_JSON)
    for p in outputs:
        log(f"  {p.stat().st_size:>10,d}  {p.relative_to(ROOT)}")
    total = sum(p.stat().st_size for p in outputs)
    log(f"  {total:>10,d}  total")
    assert total <= MAX_FIXTURE_BYTES, f"fixtures too large: {total} bytes"
    log(f"  model.safetensors: {len(sd)} tensors; reference.safetensors: {len(ref)} tensors")
    log(f"  rendered prompt: {rendered!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
