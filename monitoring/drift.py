"""Drift statistics, all from scipy (no hand-written statistics):

- PSI (population stability index) on the reference's bins: the symmetric Kullback-Leibler
  divergence `sum((live - ref) * ln(live / ref))` over the bins' shares, which is
  `scipy.special.rel_entr(live, ref) + rel_entr(ref, live)` summed. A bin empty on one side
  would make it infinite, so shares are floored at `PSI_EPSILON` (1e-4, the usual convention:
  an empty bin then weighs as one row in ten thousand) before the sum.
- KS: the two-sample Kolmogorov-Smirnov statistic and p-value (`scipy.stats.ks_2samp`) of a
  live sample against the reference sample, for numeric columns.
- JS: the Jensen-Shannon distance in base 2 (0 = same shares, 1 = disjoint)
  (`scipy.spatial.distance.jensenshannon`) between the category shares, over the union of the
  categories seen on either side, for text columns.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import special, stats
from scipy.spatial import distance

PSI_EPSILON = 1e-4


def _shares(counts: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(counts, dtype=np.float64)
    total = array.sum()
    return array / total if total > 0 else array


def psi(reference_counts: Sequence[float], live_counts: Sequence[float]) -> float | None:
    """PSI of live bin counts against the reference's (same bins); None when either is empty."""
    ref = np.asarray(reference_counts, dtype=np.float64)
    live = np.asarray(live_counts, dtype=np.float64)
    if ref.shape != live.shape or ref.sum() <= 0 or live.sum() <= 0:
        return None
    p = np.maximum(_shares(ref), PSI_EPSILON)
    q = np.maximum(_shares(live), PSI_EPSILON)
    return float(np.sum(special.rel_entr(q, p) + special.rel_entr(p, q)))


def ks(reference_sample: Any, live_sample: Any) -> tuple[float, float] | None:
    """(statistic, p-value) of the two-sample KS test on the finite values; None when a side
    has none."""
    ref = np.asarray(reference_sample, dtype=np.float64)
    live = np.asarray(live_sample, dtype=np.float64)
    ref = ref[np.isfinite(ref)]
    live = live[np.isfinite(live)]
    if len(ref) == 0 or len(live) == 0:
        return None
    result = stats.ks_2samp(ref, live)
    return float(result.statistic), float(result.pvalue)


def js(reference_shares: Mapping[str, float], live_shares: Mapping[str, float]) -> float | None:
    """Jensen-Shannon distance (base 2) between two category → share maps, over the union of
    their categories; None when either is empty."""
    categories = sorted(set(reference_shares) | set(live_shares))
    p = np.array([reference_shares.get(c, 0.0) for c in categories], dtype=np.float64)
    q = np.array([live_shares.get(c, 0.0) for c in categories], dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return None
    value = float(distance.jensenshannon(p, q, base=2))
    return value if np.isfinite(value) else None
