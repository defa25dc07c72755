"""Drift figures are scipy's: PSI is rel_entr both ways summed (the textbook
sum((q - p) ln(q / p))), KS is ks_2samp, JS is jensenshannon in base 2."""

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from monitoring import drift


def test_psi_is_the_textbook_formula_with_empty_bins_floored() -> None:
    reference = [100, 200, 300, 400, 0]
    live = [150, 150, 350, 300, 50]

    p = np.maximum(np.array(reference) / 1000, drift.PSI_EPSILON)
    q = np.maximum(np.array(live) / 1000, drift.PSI_EPSILON)

    assert drift.psi(reference, live) == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    assert drift.psi(reference, reference) == 0
    assert drift.psi(reference, [0] * 5) is None
    assert drift.psi(reference, [1, 2]) is None


def test_ks_is_scipys_two_sample_test() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=500), rng.normal(0.3, size=400)

    tested = drift.ks(a, np.append(b, np.nan))

    assert tested is not None
    statistic, pvalue = tested
    expected = stats.ks_2samp(a, b)
    assert (statistic, pvalue) == (
        pytest.approx(expected.statistic),
        pytest.approx(expected.pvalue),
    )
    assert drift.ks(a, []) is None


def test_js_is_scipys_distance_over_the_union_of_categories() -> None:
    reference = {"paris": 0.5, "lyon": 0.3, "nice": 0.2}
    live = {"paris": 0.4, "lyon": 0.3, "berlin": 0.3}

    expected = distance.jensenshannon([0, 0.3, 0.2, 0.5], [0.3, 0.3, 0, 0.4], base=2)
    assert drift.js(reference, live) == pytest.approx(expected)
    assert drift.js(reference, reference) == pytest.approx(0, abs=1e-7)
    assert drift.js({"a": 1.0}, {"b": 1.0}) == pytest.approx(1)
    assert drift.js(reference, {}) is None
