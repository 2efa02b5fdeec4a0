"""Inception Score: exp E_x KL(p(y|x) || p(y)), computed over splits."""

import numpy as np

from keras_aigc.metrics import _checks


def inception_score(probabilities, splits=10, eps=1e-12):
    """Inception Score of class probabilities predicted for generated samples.

    The samples are cut into `splits` contiguous parts; each part's score is
    `exp(mean_x KL(p(y|x) || p(y)))` with `p(y)` the part's mean prediction. Confident and
    diverse predictions over C classes score up to C; identical predictions score 1.

    Args:
        probabilities: array `(N, C)`. Rows are class probabilities (apply a softmax to
            logits first).
        splits: int. Number of parts. Defaults to `10`.
        eps: float. Guards `log(0)`.

    Returns:
        `(mean, std)` of the split scores, as floats.

    Example:

    ```python
    probs = keras.ops.softmax(classifier(images))
    score, score_std = keras_aigc.metrics.inception_score(probs, splits=10)
    ```

    Reference:
        Salimans et al. Improved Techniques for Training GANs, 2016.
    """
    p = _checks.as_features(probabilities, "probabilities")
    splits = _checks.positive_int(splits, "splits")
    if np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("probabilities must be non-negative rows summing to 1 (apply a "
                         f"softmax to logits first); row sums range over "
                         f"[{p.sum(axis=1).min():.4g}, {p.sum(axis=1).max():.4g}].")
    if splits > len(p):
        raise ValueError(f"splits={splits} exceeds the number of samples N={len(p)}.")
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = np.sum(part * (np.log(part + eps) - np.log(marginal + eps)), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))
