//! Greedy CTC decoding of a PP-OCR recogniser's output (Graves et al., "Connectionist Temporal
//! Classification", ICML 2006): the best class per time step, repeats collapsed, blanks dropped.
//!
//! PP-OCR's classes are a blank (index 0), the characters of its dictionary in order, and a space
//! last; the dictionary travels in the ONNX file's `character` metadata, one character per line.

use anyhow::{bail, Result};

/// The recogniser's classes.
#[derive(Clone, Debug)]
pub struct Dictionary {
    /// Index 0 is the blank; the last is the space.
    classes: Vec<String>,
}

impl Dictionary {
    /// From the `character` metadata: one character per line.
    pub fn from_metadata(text: &str) -> Result<Self> {
        let chars: Vec<String> = text.split('\n').map(|l| l.trim_end_matches('\r').to_string()).collect();
        if chars.is_empty() || chars.iter().all(String::is_empty) {
            bail!("the recogniser's character list is empty");
        }
        let mut classes = Vec::with_capacity(chars.len() + 2);
        classes.push(String::new());
        classes.extend(chars);
        classes.push(" ".to_string());
        Ok(Dictionary { classes })
    }

    /// Classes the recogniser's output must have.
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }
}

/// A decoded line: its text and its confidence (the mean best probability of the kept steps).
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    pub text: String,
    pub score: f32,
}

/// Decodes one line's output, `steps` rows of `dict.len()` probabilities.
pub fn decode(probs: &[f32], dict: &Dictionary) -> Result<Decoded> {
    let n = dict.len();
    if n == 0 || probs.len() % n != 0 {
        bail!("the recogniser gave {} values, not a multiple of its {n} classes", probs.len());
    }
    let (mut text, mut kept, mut sum) = (String::new(), 0usize, 0f32);
    let mut previous = usize::MAX;
    for row in probs.chunks_exact(n) {
        let (best, p) = row.iter().enumerate().fold((0, f32::MIN), |acc, (i, &p)| if p > acc.1 { (i, p) } else { acc });
        if best != 0 && best != previous {
            text.push_str(&dict.classes[best]);
            kept += 1;
            sum += p;
        }
        previous = best;
    }
    let score = if kept == 0 { 0.0 } else { sum / kept as f32 };
    Ok(Decoded { text, score })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_hot(dict: &Dictionary, path: &[usize]) -> Vec<f32> {
        let mut probs = vec![0.0; path.len() * dict.len()];
        for (t, &c) in path.iter().enumerate() {
            probs[t * dict.len() + c] = 0.9;
        }
        probs
    }

    #[test]
    fn repeats_collapse_and_blanks_separate_doubled_letters() -> Result<()> {
        let dict = Dictionary::from_metadata("a\nb\nl\no")?;
        assert_eq!(dict.len(), 6); // blank, a, b, l, o, space
                                   // "ball" needs a blank between its two l's; the space is the last class.
        let path = [2, 2, 0, 1, 3, 3, 0, 3, 5, 4, 4];
        let d = decode(&one_hot(&dict, &path), &dict)?;
        assert_eq!(d.text, "ball o");
        assert!((d.score - 0.9).abs() < 1e-6);
        assert_eq!(decode(&one_hot(&dict, &[0, 0, 0]), &dict)?, Decoded { text: String::new(), score: 0.0 });
        assert!(decode(&[0.1; 7], &dict).is_err());
        Ok(())
    }

    #[test]
    fn chinese_characters_decode_from_the_metadata_list() -> Result<()> {
        let dict = Dictionary::from_metadata("中\n文\r\n字")?;
        let d = decode(&one_hot(&dict, &[1, 0, 2, 2, 3]), &dict)?;
        assert_eq!(d.text, "中文字");
        assert!(Dictionary::from_metadata("").is_err());
        Ok(())
    }
}
