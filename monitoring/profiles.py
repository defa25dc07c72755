"""Column profiles: what a column of reference rows looks like, in the JSON shape of
monitoring/models.py's docstring.

- numeric (float64, int64 and bool columns, and numeric outputs): the deciles of the non-null
  values (`numpy.quantile`) as bin edges, the count of values per bin, the null rate, min and max.
  Edges are `[min, q1 … q9, max]` with repeated inner quantiles dropped (a column of few distinct
  values has fewer bins), so `len(counts) == len(edges) - 1`. Bin k holds
  `edges[k] <= x < edges[k + 1]` (the last bin also holds max); a live value below min falls in
  the first bin and one above max in the last, and is counted out of range besides.
- categorical (string columns and class-label outputs): the share of each value among the
  non-null ones, the `MAX_CATEGORIES` most frequent kept and the rest summed in `OTHER`.

The outputs (`prediction`, `proba__<class>`) come from scoring the rows with the engine serving
uses (`serving.cache.engine_for`), exactly as rollout's evaluation does.
"""

from typing import Any

import numpy as np
import pandas as pd

from mlplatform.errors import ApplicationError
from registry.models import ModelVersion
from serving import cache
from serving.codecs.columns import InputError, frame_to_matrix
from serving.engines import EngineUnavailable
from serving.services import estimator_outputs

BINS = 10
MAX_CATEGORIES = 200
OTHER = "__other__"
SCORE_BLOCK_ROWS = 50_000


def kind_of(dtype: str) -> str:
    """ "categorical" for text columns, "numeric" for the others."""
    return "categorical" if dtype == "string" else "numeric"


def inner_edges(profile: dict[str, Any]) -> list[float]:
    """The edges between a numeric profile's bins (its edges without min and max)."""
    return [float(e) for e in profile.get("edges", [])[1:-1]]


def bin_counts(values: np.ndarray, inner: list[float]) -> np.ndarray:
    """How many of the (non-null) `values` fall in each bin of the profile's rule."""
    index = np.searchsorted(np.asarray(inner, dtype=np.float64), values, side="right")
    return np.bincount(index, minlength=len(inner) + 1)


def numeric_profile(values: Any) -> dict[str, Any]:
    """The profile of a numeric column (None or NaN count as null)."""
    array = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    count = len(array)
    present = array[np.isfinite(array)]
    profile: dict[str, Any] = {
        "kind": "numeric",
        "count": count,
        "null_rate": float(1 - len(present) / count) if count else 0.0,
        "min": None,
        "max": None,
        "edges": [],
        "counts": [],
    }
    if len(present) == 0:
        return profile
    quantiles = np.quantile(present, np.linspace(0, 1, BINS + 1))
    low, high = float(quantiles[0]), float(quantiles[-1])
    inner = [float(q) for q in np.unique(quantiles[1:-1]) if low < q <= high]
    profile.update(
        {
            "min": low,
            "max": high,
            "edges": [low, *inner, high],
            "counts": [int(c) for c in bin_counts(present, inner)],
        }
    )
    return profile


def categorical_profile(values: Any) -> dict[str, Any]:
    """The profile of a text column: shares of the `MAX_CATEGORIES` most frequent values,
    the rest in `OTHER`."""
    series = pd.Series(values, dtype=object)
    count = len(series)
    present = series[series.notna()].astype(str)
    shares: dict[str, float] = {}
    if len(present):
        frequencies = present.value_counts()
        top = frequencies.iloc[:MAX_CATEGORIES]
        shares = {str(k): float(v) / len(present) for k, v in top.items()}
        rest = int(frequencies.iloc[MAX_CATEGORIES:].sum())
        if rest:
            shares[OTHER] = rest / len(present)
    return {
        "kind": "categorical",
        "count": count,
        "null_rate": float(1 - len(present) / count) if count else 0.0,
        "categories": shares,
    }


def column_profile(values: Any, *, kind: str) -> dict[str, Any]:
    return categorical_profile(values) if kind == "categorical" else numeric_profile(values)


def input_kinds(version: ModelVersion) -> dict[str, str]:
    """Input column → "numeric" | "categorical", in signature order."""
    return {name: kind_of(dtype) for name, dtype in version.signature.dtypes.items()}


def output_kinds(version: ModelVersion) -> dict[str, str]:
    """Output name → kind: `prediction` (class labels are categorical, unless the classes are
    numbers), and `proba__<class>` per class for a classifier with probabilities."""
    signature = version.signature
    classes = list(signature.classes or [])
    numeric_labels = bool(classes) and all(
        isinstance(c, int | float) and not isinstance(c, bool) for c in classes
    )
    if classes:
        kinds = {"prediction": "numeric" if numeric_labels else "categorical"}
    else:
        kinds = {"prediction": "numeric" if signature.predict_dtype != "string" else "categorical"}
    if classes and signature.has_predict_proba:
        kinds.update({f"proba__{c}": "numeric" for c in classes})
    return kinds


def outputs_score(version: ModelVersion, frame: pd.DataFrame) -> pd.DataFrame:
    """The version's outputs for `frame`'s rows (columns `prediction`, `proba__<class>`), scored
    in blocks by the engine that serves it.

    Raises:
        ApplicationError: a row the model cannot take (naming it), or the version cannot be
            served.
    """
    signature = version.signature
    classes = list(signature.classes or [])
    wanted = ["predict"]
    if classes and signature.has_predict_proba:
        wanted.append("predict_proba")
    try:
        engine = cache.engine_for(version)
    except EngineUnavailable as exc:
        raise ApplicationError(f"{version} cannot be loaded: {exc}") from exc
    parts = []
    for offset in range(0, len(frame), SCORE_BLOCK_ROWS):
        block = frame.iloc[offset : offset + SCORE_BLOCK_ROWS]
        try:
            matrix = frame_to_matrix(block, signature, row_offset=offset)
            results = estimator_outputs(engine, matrix, wanted, version=version)
        except InputError as exc:
            row = exc.extra.get("row")
            where = f" (data row {row})" if row is not None else ""
            raise ApplicationError(
                f"file: {exc.message}{where}", extra={"field": "file", **exc.extra}
            ) from exc
        except EngineUnavailable as exc:
            raise ApplicationError(f"{version} cannot be served now: {exc}") from exc
        part = pd.DataFrame({"prediction": np.asarray(results["predict"]).ravel()})
        if "predict_proba" in results:
            proba = np.asarray(results["predict_proba"], dtype=np.float64)
            for index, label in enumerate(classes):
                part[f"proba__{label}"] = proba[:, index]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def profile_make(
    version: ModelVersion, inputs: pd.DataFrame, outputs: pd.DataFrame
) -> dict[str, Any]:
    """`ReferenceProfile.profile` of these input rows and the version's outputs for them."""
    columns = {
        name: column_profile(inputs[name], kind=kind) for name, kind in input_kinds(version).items()
    }
    results = {
        name: column_profile(outputs[name], kind=kind)
        for name, kind in output_kinds(version).items()
        if name in outputs
    }
    return {"columns": columns, "outputs": results}
