"""Paired bootstrap interval of the mean per-unit difference between two methods.

Units are what both methods were measured on (image pairs, frame pairs or sequences), matched by name.
The difference d_i = a_i - b_i of every unit is resampled with replacement ``resamples`` times (a fixed
seed, so the interval is reproducible); the 95% interval is the 2.5th and 97.5th percentile of the
resampled means. Also counted: units where a is ahead, behind, or level.
"""
from __future__ import annotations

import numpy as np

RESAMPLES = 10_000


def paired_bootstrap(a: dict[str, float], b: dict[str, float], resamples: int = RESAMPLES, seed: int = 0,
                     level: float = 0.95) -> dict[str, float]:
    """Mean of a - b over the units both have, its bootstrap interval, and win/loss counts.

    Raises ValueError when the two share no unit.
    """
    units = sorted(set(a) & set(b))
    if not units:
        raise ValueError("bootstrap: the two methods share no measured unit")
    diff = np.array([a[u] - b[u] for u in units], dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return {"units": len(units), "mean_a": float(np.mean([a[u] for u in units])),
            "mean_b": float(np.mean([b[u] for u in units])), "difference": float(diff.mean()),
            "low": float(low), "high": float(high), "level": level, "resamples": resamples,
            "ahead": int((diff > 0).sum()), "behind": int((diff < 0).sum()), "level_units": int((diff == 0).sum())}
