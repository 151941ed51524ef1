"""Means over prompts with 95% confidence intervals: a percentile bootstrap over prompts.

The prompts are the sample: a bench's question is how a mode does on prompts like these, so each
resample draws prompts with replacement and keeps all of a prompt's seeds with it. Ratios (speed-up,
detail, diversity) are ratios of means over the same resampled prompts, so both sides move together.
The resampling is seeded: the same cells give the same report, to the digit.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

CONFIDENCE = 0.95
RESAMPLES = 2000
BOOTSTRAP_SEED = 0

Values = npt.NDArray[np.float64]  # one number per prompt; NaN where the prompt has none


@dataclass(frozen=True)
class Interval:
    """A point estimate and its interval; low and high None with fewer than 2 prompts measured."""

    value: float | None
    low: float | None = None
    high: float | None = None

    def rounded(self) -> float | None:
        return _finite(self.value)

    def bounds(self) -> list[float | None]:
        return [_finite(self.low), _finite(self.high)]


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 6)


def _means(values: Values, samples: npt.NDArray[np.intp]) -> Values:
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample of only NaNs: its mean is NaN
        return np.asarray(np.nanmean(values[samples], axis=-1), dtype=np.float64)


def mean_interval(
    values: Values,
    over: Values | None = None,
    *,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> Interval:
    """The mean of `values` over prompts, or with `over` the ratio mean(values) / mean(over) of the
    prompts where both are measured; and its bootstrap interval. None where nothing is measured."""
    values = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(values)
    if over is not None:
        over = np.asarray(over, dtype=np.float64)
        keep &= ~np.isnan(over)
    values = values[keep]
    denominator = over[keep] if over is not None else None
    if values.size == 0:
        return Interval(None)

    def statistic(samples: npt.NDArray[np.intp]) -> Values:
        top = _means(values, samples)
        if denominator is None:
            return top
        with np.errstate(invalid="ignore", divide="ignore"):
            return top / _means(denominator, samples)

    everything = np.arange(values.size)
    point = float(statistic(everything))
    if not math.isfinite(point):
        return Interval(None)
    if values.size < 2:
        return Interval(point)
    rng = np.random.default_rng(seed)
    estimates = statistic(rng.integers(0, values.size, size=(resamples, values.size)))
    estimates = estimates[np.isfinite(estimates)]
    if estimates.size == 0:
        return Interval(point)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(estimates, [tail, 100.0 - tail])
    return Interval(point, float(low), float(high))
