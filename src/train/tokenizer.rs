//! A character-level tokenizer in the `tokenizers` JSON format, shaped like ERNIE's: Metaspace
//! pre-tokenizer (`▁` for spaces), a BPE model with no merges (so every character is a token),
//! byte fallback (`<0x00>`…`<0xFF>`) for anything outside the character set, and the special
//! tokens PaddleOCR-VL's chat template uses.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

pub const PAD: &str = "<pad>";
pub const UNK: &str = "<unk>";
pub const BOS: &str = "<s>";
pub const EOS: &str = "</s>";
pub const CLS: &str = "<|begin_of_sentence|>";
pub const SEP: &str = "<|end_of_sentence|>";
pub const IMAGE: &str = "<|IMAGE_PLACEHOLDER|>";
pub const IMAGE_START: &str = "<|IMAGE_START|>";
pub const IMAGE_END: &str = "<|IMAGE_END|>";
pub const SPECIALS: [&str; 9] = [PAD, UNK, BOS, EOS, CLS, SEP, IMAGE, IMAGE_START, IMAGE_END];

/// Token ids of the specials, in [`SPECIALS`] order: they come first (0, 1, 2, …).
pub fn special_id(token: &str) -> u32 {
    SPECIALS.iter().position(|s| *s == token).unwrap_or(0) as u32
}

/// `tokenizer.json` for the given characters (plus printable ASCII, which is always included).
pub fn tokenizer_json(chars: &BTreeSet<char>) -> Value {
    let mut vocab = Map::new();
    let mut push = |piece: String| {
        let id = vocab.len();
        vocab.entry(piece).or_insert(json!(id));
    };
    for s in SPECIALS {
        push(s.to_string());
    }
    for b in 0..=255u8 {
        push(format!("<0x{b:02X}>"));
    }
    push("▁".to_string());
    let ascii = (b'!'..=b'~').map(char::from);
    let all: BTreeSet<char> =
        chars.iter().copied().chain(ascii).filter(|c| !c.is_whitespace() && !c.is_control()).collect();
    for c in all {
        push(c.to_string());
    }
    let added: Vec<Value> = SPECIALS
        .iter()
        .enumerate()
        .map(|(id, s)| json!({"id": id, "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}))
        .collect();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false},
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}
        ]},
        "model": {"type": "BPE", "dropout": null, "unk_token": UNK, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                  "vocab": Value::Object(vocab), "merges": []}
    })
}

/// Appends to a `tokenizer.json` (as [`tokenizer_json`] writes it) the characters of `chars` it
/// lacks, after every existing id, so a model trained with the old vocabulary keeps its meaning
/// for every old id. Returns the characters added, in id order.
pub fn extend_vocab(tok: &mut Value, chars: &BTreeSet<char>) -> anyhow::Result<Vec<char>> {
    let Some(vocab) = tok.pointer_mut("/model/vocab").and_then(Value::as_object_mut) else {
        anyhow::bail!("tokenizer.json has no model.vocab object");
    };
    // New ids start after the largest one; an id gap would leave rows nobody trains.
    let next = vocab.values().filter_map(Value::as_u64).max().map_or(0, |m| m + 1);
    if next != vocab.len() as u64 {
        anyhow::bail!("tokenizer.json's vocabulary ids are not 0..{} without gaps", vocab.len());
    }
    let mut added = Vec::new();
    for &c in chars {
        let piece = c.to_string();
        if c.is_whitespace() || c.is_control() || vocab.contains_key(&piece) {
            continue;
        }
        vocab.insert(piece, json!(next + added.len() as u64));
        added.push(c);
    }
    Ok(added)
}

/// `tokenizer_config.json`: the special-token strings the chat template and loaders read.
pub fn tokenizer_config_json() -> Value {
    let decoder: Map<String, Value> = SPECIALS
        .iter()
        .enumerate()
        .map(|(id, s)| (id.to_string(), json!({"content": s, "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true})))
        .collect();
    json!({
        "add_bos_token": false, "add_eos_token": false,
        "added_tokens_decoder": decoder,
        "bos_token": BOS, "eos_token": EOS, "pad_token": PAD, "unk_token": UNK, "cls_token": CLS, "sep_token": SEP,
        "image_token": IMAGE,
        "model_max_length": 4096,
        "tokenizer_class": "LlamaTokenizer",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_text_and_falls_back_to_bytes() {
        let chars: BTreeSet<char> = "héllo wörld".chars().collect();
        let json = tokenizer_json(&chars).to_string();
        let tok = tokenizers::Tokenizer::from_bytes(json.as_bytes()).unwrap();
        for text in ["héllo wörld", "Hello, World! 42 + x_y = {z}", "naïve 中文 ok", "a  b\tc"] {
            let ids = tok.encode(text, false).unwrap().get_ids().to_vec();
            assert_eq!(tok.decode(&ids, true).unwrap(), text, "{text}");
        }
        let enc = tok.encode("ab", false).unwrap();
        assert_eq!(enc.get_tokens(), ["▁", "a", "b"], "one token per character, after the leading space mark");
        assert_eq!(tok.token_to_id(IMAGE), Some(special_id(IMAGE)));
        let prompt = tok
            .encode(format!("{CLS}User: {IMAGE_START}{IMAGE}{IMAGE_END}OCR:\nAssistant:\n").as_str(), false)
            .unwrap();
        assert_eq!(prompt.get_ids()[0], special_id(CLS));
        assert!(prompt.get_ids().contains(&special_id(IMAGE)));
    }

    #[test]
    fn extending_keeps_old_ids_and_appends_new_characters() {
        let mut json = tokenizer_json(&"hé".chars().collect());
        let old = tokenizers::Tokenizer::from_bytes(json.to_string().as_bytes()).unwrap();
        let old_len = old.get_vocab_size(true);
        let added = extend_vocab(&mut json, &"é中文 a\n".chars().collect()).unwrap();
        assert_eq!(added, ['中', '文'], "only characters the vocabulary lacked");
        let new = tokenizers::Tokenizer::from_bytes(json.to_string().as_bytes()).unwrap();
        assert_eq!(new.get_vocab_size(true), old_len + 2);
        for piece in ["h", "é", "a", "▁", "<0x41>", IMAGE] {
            assert_eq!(new.token_to_id(piece), old.token_to_id(piece), "{piece}");
        }
        assert_eq!(new.token_to_id("中"), Some(old_len as u32));
        let ids = new.encode("中文 hé", false).unwrap().get_ids().to_vec();
        assert_eq!(ids.len(), 6, "one id per character, no byte fallback: {ids:?}");
        assert_eq!(new.decode(&ids, true).unwrap(), "中文 hé");
        assert!(extend_vocab(&mut json!({"model": {}}), &"x".chars().collect()).is_err());
    }
}
