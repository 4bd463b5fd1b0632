//! Connectionist temporal classification (Graves et al., 2006, "Connectionist Temporal
//! Classification: Labelling Unsegmented Sequence Data with Recurrent Neural Networks"): the loss
//! of a label sequence under per-frame class distributions, summed over every monotonic alignment,
//! and its gradient, by the forward–backward recursions in log space. O(T·(2L+1)) per sequence.
//!
//! Training uses it as an auxiliary loss on the vision tower's patch columns: it gives the vision
//! encoder a direct, dense reading signal from the first step, before the decoder has learnt where
//! to look. Without it the from-scratch model's vision output collapsed to one vector for every
//! patch within a hundred steps and the decoder learnt a language model that ignores the image.

/// Loss and gradient of one sequence.
pub struct CtcOutput {
    /// −log p(labels | frames).
    pub loss: f64,
    /// ∂loss/∂logits, `(frames, classes)` row-major: softmax minus the posterior class occupancy.
    pub grad: Vec<f32>,
}

fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

/// Row-wise log-softmax of `(frames, classes)` logits.
fn log_softmax(logits: &[f32], classes: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks_exact(classes) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
        let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
        let log_z = max + sum.ln();
        out.extend(row.iter().map(|&x| x as f64 - log_z));
    }
    out
}

/// Whether `frames` frames can hold `labels`: one frame per label plus a blank between repeats.
pub fn alignable(frames: usize, labels: &[u32]) -> bool {
    let repeats = labels.windows(2).filter(|w| w[0] == w[1]).count();
    frames > 0 && frames >= labels.len() + repeats
}

/// CTC loss of `labels` (no blanks in them) given `(frames, classes)` logits (before softmax).
/// `None` when no alignment exists: fewer frames than labels plus the blanks needed between
/// repeated labels, an empty input, or a label out of range.
pub fn ctc(logits: &[f32], classes: usize, labels: &[u32], blank: u32) -> Option<CtcOutput> {
    if classes == 0 || logits.is_empty() || !logits.len().is_multiple_of(classes) {
        return None;
    }
    let frames = logits.len() / classes;
    if labels.iter().any(|&l| l == blank || l as usize >= classes) {
        return None;
    }
    if !alignable(frames, labels) {
        return None;
    }
    // Extended labels: blank, l1, blank, l2, …, blank.
    let ext: Vec<usize> =
        std::iter::once(blank as usize).chain(labels.iter().flat_map(|&l| [l as usize, blank as usize])).collect();
    let s_len = ext.len();
    let lp = log_softmax(logits, classes);
    let at = |t: usize, s: usize| lp[t * classes + ext[s]];
    // s may come from s−2 when it is a label differing from the label two back.
    let skip = |s: usize| s >= 2 && ext[s] != blank as usize && ext[s] != ext[s - 2];

    let ninf = f64::NEG_INFINITY;
    let mut alpha = vec![ninf; frames * s_len];
    alpha[0] = at(0, 0);
    if s_len > 1 {
        alpha[1] = at(0, 1);
    }
    for t in 1..frames {
        for s in 0..s_len {
            let mut a = alpha[(t - 1) * s_len + s];
            if s >= 1 {
                a = log_add(a, alpha[(t - 1) * s_len + s - 1]);
            }
            if skip(s) {
                a = log_add(a, alpha[(t - 1) * s_len + s - 2]);
            }
            alpha[t * s_len + s] = if a == ninf { ninf } else { a + at(t, s) };
        }
    }
    let mut beta = vec![ninf; frames * s_len];
    let last = (frames - 1) * s_len;
    beta[last + s_len - 1] = at(frames - 1, s_len - 1);
    if s_len > 1 {
        beta[last + s_len - 2] = at(frames - 1, s_len - 2);
    }
    for t in (0..frames - 1).rev() {
        for s in 0..s_len {
            let mut b = beta[(t + 1) * s_len + s];
            if s + 1 < s_len {
                b = log_add(b, beta[(t + 1) * s_len + s + 1]);
            }
            if s + 2 < s_len && skip(s + 2) {
                b = log_add(b, beta[(t + 1) * s_len + s + 2]);
            }
            beta[t * s_len + s] = if b == ninf { ninf } else { b + at(t, s) };
        }
    }
    let mut log_p = alpha[last + s_len - 1];
    if s_len > 1 {
        log_p = log_add(log_p, alpha[last + s_len - 2]);
    }
    if !log_p.is_finite() {
        return None;
    }
    // Posterior occupancy of class k at frame t: Σ_{s: ext[s]=k} α_t(s) β_t(s) / (p · y_t(k)).
    let mut grad = vec![0f32; frames * classes];
    let mut occupancy = vec![ninf; classes];
    for t in 0..frames {
        occupancy.fill(ninf);
        for s in 0..s_len {
            let ab = alpha[t * s_len + s] + beta[t * s_len + s];
            occupancy[ext[s]] = log_add(occupancy[ext[s]], ab);
        }
        for k in 0..classes {
            let y = lp[t * classes + k];
            let post = (occupancy[k] - y - log_p).exp();
            grad[t * classes + k] = (y.exp() - post) as f32;
        }
    }
    Some(CtcOutput { loss: -log_p, grad })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// −log of the summed probability of every frame path that collapses to `labels`.
    fn brute_force(logits: &[f32], classes: usize, labels: &[u32], blank: u32) -> f64 {
        let frames = logits.len() / classes;
        let lp = log_softmax(logits, classes);
        let mut total = 0.0;
        for code in 0..classes.pow(frames as u32) {
            let path: Vec<usize> = (0..frames).map(|t| code / classes.pow(t as u32) % classes).collect();
            let mut collapsed = Vec::new();
            for (t, &k) in path.iter().enumerate() {
                if k != blank as usize && (t == 0 || path[t - 1] != k) {
                    collapsed.push(k as u32);
                }
            }
            if collapsed == labels {
                total += path.iter().enumerate().map(|(t, &k)| lp[t * classes + k]).sum::<f64>().exp();
            }
        }
        -total.ln()
    }

    fn logits(frames: usize, classes: usize, seed: u32) -> Vec<f32> {
        (0..frames * classes).map(|i| ((((i as u32 * 2654435761) ^ seed) % 1000) as f32 / 250.0) - 2.0).collect()
    }

    #[test]
    fn loss_equals_the_sum_over_all_alignments() {
        for (labels, frames) in [(vec![1u32], 3), (vec![1, 2], 4), (vec![2, 2], 4), (vec![1, 2, 1], 5), (vec![3], 1)] {
            let x = logits(frames, 4, frames as u32 * 7 + labels.len() as u32);
            let out = ctc(&x, 4, &labels, 0).unwrap();
            let want = brute_force(&x, 4, &labels, 0);
            assert!((out.loss - want).abs() < 1e-9, "{labels:?}: {} vs {want}", out.loss);
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (frames, classes, labels) = (6, 5, [1u32, 3, 3, 2]);
        let x = logits(frames, classes, 11);
        let out = ctc(&x, classes, &labels, 0).unwrap();
        for i in 0..x.len() {
            let eps = 1e-3;
            let mut xp = x.clone();
            xp[i] += eps;
            let mut xm = x.clone();
            xm[i] -= eps;
            let fd = (ctc(&xp, classes, &labels, 0).unwrap().loss - ctc(&xm, classes, &labels, 0).unwrap().loss)
                / (2.0 * eps as f64);
            assert!((fd - out.grad[i] as f64).abs() < 1e-3, "logit {i}: {fd} vs {}", out.grad[i]);
        }
        // Each frame's gradient sums to zero (softmax minus a distribution).
        for row in out.grad.chunks(classes) {
            assert!(row.iter().sum::<f32>().abs() < 1e-5);
        }
    }

    #[test]
    fn impossible_alignments_are_refused() {
        let x = logits(3, 4, 1);
        assert!(ctc(&x, 4, &[1, 1, 1], 0).is_none(), "3 repeats need 5 frames");
        assert!(ctc(&x, 4, &[1, 2, 3, 1], 0).is_none(), "4 labels need 4 frames");
        assert!(ctc(&x, 4, &[0], 0).is_none(), "blank as a label");
        assert!(ctc(&x, 4, &[9], 0).is_none(), "label out of range");
        assert!(ctc(&[], 4, &[1], 0).is_none());
        assert!(ctc(&x, 4, &[], 0).is_some(), "the empty label is all blanks");
    }
}
