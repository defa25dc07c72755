"""Column profiles of known data: exact bins, counts, shares and null rates."""

import numpy as np
import pytest

from monitoring import profiles


def test_numeric_profile_has_decile_bins_of_the_values() -> None:
    values = [float(v) for v in range(1, 101)] + [None] * 25

    profile = profiles.numeric_profile(values)

    assert profile["kind"] == "numeric"
    assert profile["count"] == 125
    assert profile["null_rate"] == pytest.approx(0.2)
    assert (profile["min"], profile["max"]) == (1.0, 100.0)
    expected = np.quantile(np.arange(1, 101), np.linspace(0, 1, 11))
    assert profile["edges"] == pytest.approx(expected)
    assert profile["counts"] == [10] * 10


def test_few_distinct_values_give_fewer_bins() -> None:
    values = [0.0] * 70 + [1.0] * 30

    profile = profiles.numeric_profile(values)

    # numpy's (linear) deciles: 0 up to the 7th, 0.3 at it, then 1
    assert profile["edges"] == pytest.approx([0.0, 0.3, 1.0, 1.0])
    assert profile["counts"] == [70, 0, 30]
    assert len(profile["counts"]) == len(profile["edges"]) - 1


def test_live_values_outside_the_reference_fall_in_the_end_bins() -> None:
    profile = profiles.numeric_profile([float(v) for v in range(1, 101)])

    counts = profiles.bin_counts(
        np.array([-5.0, 1.0, 50.0, 100.0, 500.0]), profiles.inner_edges(profile)
    )

    assert counts.tolist() == [2, 0, 0, 0, 1, 0, 0, 0, 0, 2]


def test_a_column_of_nulls_has_no_bins() -> None:
    profile = profiles.numeric_profile([None, None])

    assert (profile["null_rate"], profile["edges"], profile["counts"]) == (1.0, [], [])


def test_categorical_profile_shares() -> None:
    profile = profiles.categorical_profile(["a"] * 6 + ["b"] * 3 + [None])

    assert profile == {
        "kind": "categorical",
        "count": 10,
        "null_rate": pytest.approx(0.1),
        "categories": {"a": pytest.approx(6 / 9), "b": pytest.approx(3 / 9)},
    }


def test_rare_categories_past_the_most_frequent_go_to_other() -> None:
    values = ["common"] * 1000 + [f"rare{i}" for i in range(profiles.MAX_CATEGORIES + 50)]

    shares = profiles.categorical_profile(values)["categories"]

    assert len(shares) == profiles.MAX_CATEGORIES + 1
    assert shares["common"] == pytest.approx(1000 / 1250)
    assert shares[profiles.OTHER] == pytest.approx(51 / 1250)
    assert sum(shares.values()) == pytest.approx(1)
