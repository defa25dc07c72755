"""Integrity of the index arrays inside a loaded model, checked before it is ever asked to predict.

A fitted decision tree is a set of arrays the prediction code follows without bounds checks: a
child index out of range reads other memory, a cycle loops forever, a feature index past the
input's width reads past each row. Such a model loads cleanly and passes a smoke prediction on a
row of zeros (which may always go left), then crashes or hangs on the first row that goes right.
The static scan cannot see these values (joblib stores arrays as raw bytes), so this check runs on
the loaded object, in the sandbox and in the model runners, right after loading.

`trees_check` walks the fitted object graph (bounded) and checks every structure whose
prediction code indexes memory with numbers from the file:

- ``sklearn.tree._tree.Tree`` (decision trees, forests, gradient boosting, isolation forests):
  children in range (-1 marks a leaf, on both sides or neither), each node reached at most once
  from the root (so no cycles), depth within ``max_depth`` (decision_path sizes its buffer by it),
  feature indices below ``n_features`` and ``n_features`` equal to the owner's
  ``n_features_in_``, internal thresholds not NaN or -inf (+inf is how a split sends only missing
  values one way), values finite;
- histogram gradient boosting's ``TreePredictor``: the same on its ``nodes`` records, plus
  categorical splits on categorical features with bitset indices in range;
- ``KDTree``/``BallTree`` (neighbours): sample and node indices in range, node count matching the
  levels, bounds and weights matching the data; their distance metric's matrix shape;
- ``scipy.sparse`` matrices (index arrays), ``scipy.interpolate.BSpline`` (knots, coefficients
  and degree agree), libsvm models (support vector counts agree with the arrays) and k-means
  centres (as wide as the input).

Imports scikit-learn and scipy lazily: only where a loaded model is checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

MAX_OBJECTS = 2_000_000


class TreeError(ValueError):
    """A loaded model's internal arrays are inconsistent; the message says which and how."""


def trees_check(estimator: Any, *, max_objects: int = MAX_OBJECTS) -> None:
    """Check every tree-like structure in a loaded model; raises TreeError on the first fault."""
    from scipy import sparse
    from scipy.interpolate import BSpline
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.metrics._dist_metrics import DistanceMetric32, DistanceMetric64
    from sklearn.neighbors import _ball_tree, _kd_tree
    from sklearn.tree._tree import Tree

    binary_trees = tuple(
        getattr(module, name)
        for module in (_ball_tree, _kd_tree)
        for name in ("BinaryTree64", "BinaryTree32")
        if hasattr(module, name)
    )
    for obj, owner, where in _walk(estimator, max_objects):
        if isinstance(obj, Tree):
            _tree(obj, owner, where)
        elif isinstance(obj, TreePredictor):
            _predictor(obj, owner, where)
        elif isinstance(obj, binary_trees):
            _binary_tree(obj, where)
        elif isinstance(obj, (DistanceMetric64, DistanceMetric32)):
            _metric(obj, where)
        elif sparse.issparse(obj):
            _sparse(obj, where)
        elif isinstance(obj, BSpline):
            _spline(obj, where)
        elif owner is obj:
            _estimator(obj, where)


# --- walking the object graph --------------------------------------------------------------------

_LEAVES = (str, bytes, bytearray, int, float, complex, bool, type(None), np.generic, type)


def _walk(root: Any, max_objects: int) -> Iterator[tuple[Any, Any, str]]:
    """(object, the nearest estimator holding it, a path for messages), each object once."""
    seen: set[int] = set()
    pending: list[tuple[Any, Any, str]] = [(root, None, type(root).__name__)]
    while pending:
        obj, owner, where = pending.pop()
        if isinstance(obj, _LEAVES) or id(obj) in seen:
            continue
        seen.add(id(obj))
        if len(seen) > max_objects:
            raise TreeError(f"the model holds more than {max_objects} objects, too many to check.")
        if hasattr(obj, "n_features_in_") or hasattr(obj, "tree_") or hasattr(obj, "_predictors"):
            owner = obj
        yield obj, owner, where
        pending.extend(_children(obj, owner, where))


def _children(obj: Any, owner: Any, where: str) -> Iterator[tuple[Any, Any, str]]:
    # Plain values are dropped here, before a path is formatted for them: object arrays of
    # category strings can hold millions.
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            for index, item in enumerate(obj.flat):
                if not isinstance(item, _LEAVES):
                    yield item, owner, f"{where}[{index}]"
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(value, _LEAVES):
                yield value, owner, f"{where}[{key!r}]"
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        for index, item in enumerate(obj):
            if not isinstance(item, _LEAVES):
                yield item, owner, f"{where}[{index}]"
        return
    attrs = getattr(obj, "__dict__", None)
    if isinstance(attrs, dict):
        for name, value in attrs.items():
            if not isinstance(value, _LEAVES):
                yield value, owner, f"{where}.{name}"


def _fail(where: str, problem: str) -> TreeError:
    # Lower case: callers show it after "Refused: ", like the scanner's reasons.
    return TreeError(f"the model's {where} is corrupt: {problem}.")


# --- decision trees ------------------------------------------------------------------------------


def _n_features(owner: Any) -> int | None:
    value = getattr(owner, "n_features_in_", None)
    return int(value) if isinstance(value, (int, np.integer)) else None


def _check_links(left: np.ndarray, right: np.ndarray, leaf: np.ndarray, where: str) -> int:
    """Children in range, each node the child of at most one parent and never the root; returns
    the depth of the deepest node reachable from the root."""
    n = left.shape[0]
    if n == 0:
        raise _fail(where, "it has no nodes")
    internal = ~leaf
    for side, children in (("left", left), ("right", right)):
        bad = internal & ((children < 1) | (children >= n))
        if bad.any():
            node = int(np.flatnonzero(bad)[0])
            raise _fail(where, f"node {node}'s {side} child {int(children[node])} is out of range")
    targets = np.concatenate([left[internal], right[internal]]).astype(np.int64)
    counts = np.bincount(targets, minlength=n)
    if counts.max(initial=0) > 1:
        node = int(np.argmax(counts))
        raise _fail(where, f"node {node} is the child of more than one node (a cycle or a merge)")
    # In-degree at most one and a root nobody points to: the walk from the root is a tree, and
    # it ends (a cycle would need a node with two parents or a parent of the root).
    depth = np.full(n, -1, dtype=np.int64)
    depth[0] = 0
    stack = [0]
    visited = 0
    while stack:
        node = stack.pop()
        visited += 1
        if visited > n:
            raise _fail(where, "its nodes form a cycle")
        if internal[node]:
            for child in (int(left[node]), int(right[node])):
                depth[child] = depth[node] + 1
                stack.append(child)
    return int(depth.max())


def _tree(tree: Any, owner: Any, where: str) -> None:
    n = int(tree.node_count)
    left = np.asarray(tree.children_left, dtype=np.int64)
    right = np.asarray(tree.children_right, dtype=np.int64)
    if left.shape != (n,) or right.shape != (n,):
        raise _fail(where, "its child arrays do not match its node count")
    leaf_left, leaf_right = left == -1, right == -1
    if (leaf_left != leaf_right).any():
        node = int(np.flatnonzero(leaf_left != leaf_right)[0])
        raise _fail(where, f"node {node} has one child")
    depth = _check_links(left, right, leaf_left, where)
    if depth > int(tree.max_depth):
        raise _fail(where, f"it is {depth} deep but declares max_depth {int(tree.max_depth)}")
    internal = ~leaf_left
    n_features = int(tree.n_features)
    expected = _n_features(owner)
    if expected is not None and n_features != expected:
        raise _fail(where, f"it reads {n_features} features but its model takes {expected}")
    feature = np.asarray(tree.feature, dtype=np.int64)
    bad = internal & ((feature < 0) | (feature >= n_features))
    if bad.any():
        node = int(np.flatnonzero(bad)[0])
        raise _fail(where, f"node {node} splits on feature {int(feature[node])} of {n_features}")
    threshold = np.asarray(tree.threshold, dtype=np.float64)
    bad = internal & (np.isnan(threshold) | (threshold == -np.inf))
    if bad.any():
        raise _fail(where, f"node {int(np.flatnonzero(bad)[0])} has an invalid threshold")
    if not np.isfinite(np.asarray(tree.value, dtype=np.float64)).all():
        raise _fail(where, "it holds values that are not finite")


def _predictor(predictor: Any, owner: Any, where: str) -> None:
    nodes = predictor.nodes
    names = getattr(nodes.dtype, "names", None) or ()
    required = ("left", "right", "feature_idx", "is_leaf", "value", "num_threshold")
    if nodes.ndim != 1 or not set(required) <= set(names):
        raise _fail(where, "its nodes are not tree records")
    left = nodes["left"].astype(np.int64)
    right = nodes["right"].astype(np.int64)
    leaf = nodes["is_leaf"].astype(bool)
    _check_links(left, right, leaf, where)
    internal = ~leaf
    feature = nodes["feature_idx"].astype(np.int64)
    n_features = _n_features(owner)
    upper = n_features if n_features is not None else np.iinfo(np.int64).max
    bad = internal & ((feature < 0) | (feature >= upper))
    if bad.any():
        node = int(np.flatnonzero(bad)[0])
        raise _fail(where, f"node {node} splits on feature {int(feature[node])} of {n_features}")
    threshold = nodes["num_threshold"].astype(np.float64)
    bad = internal & (np.isnan(threshold) | (threshold == -np.inf))
    if bad.any():
        raise _fail(where, f"node {int(np.flatnonzero(bad)[0])} has an invalid threshold")
    if not np.isfinite(nodes["value"][leaf].astype(np.float64)).all():
        raise _fail(where, "it holds leaf values that are not finite")
    categorical = internal & nodes["is_categorical"].astype(bool)
    if categorical.any():
        _categorical_splits(predictor, owner, nodes, categorical, feature, where)


def _categorical_splits(
    predictor: Any,
    owner: Any,
    nodes: np.ndarray,
    categorical: np.ndarray,
    feature: np.ndarray,
    where: str,
) -> None:
    bitset_idx = nodes["bitset_idx"].astype(np.int64)
    for name in ("raw_left_cat_bitsets", "binned_left_cat_bitsets"):
        bitsets = np.asarray(getattr(predictor, name))
        if bitsets.ndim != 2 or bitsets.shape[1] != 8:
            raise _fail(where, f"its {name} are not rows of 256 bits")
        bad = categorical & ((bitset_idx < 0) | (bitset_idx >= bitsets.shape[0]))
        if bad.any():
            raise _fail(where, f"node {int(np.flatnonzero(bad)[0])} names a missing category set")
    # Prediction looks up the known categories of the split's feature: it must be categorical.
    mapper = getattr(owner, "_bin_mapper", None)
    is_categorical = getattr(mapper, "is_categorical_", None)
    if is_categorical is None:
        raise _fail(where, "it has categorical splits but its model has no categorical features")
    is_categorical = np.asarray(is_categorical, dtype=bool)
    n_features = _n_features(owner)
    if n_features is not None and is_categorical.shape != (n_features,):
        raise _fail(where, "its model's categorical feature mask does not match its features")
    split_features = feature[categorical]
    if (split_features >= is_categorical.shape[0]).any() or not is_categorical[
        split_features
    ].all():
        raise _fail(where, "it makes a categorical split on a feature that is not categorical")


# --- neighbours ----------------------------------------------------------------------------------


def _binary_tree(tree: Any, where: str) -> None:
    (data, idx_array, node_data, node_bounds, _leaf_size, n_levels, n_nodes, *rest) = (
        tree.__getstate__()
    )
    sample_weight = rest[-1]
    data = np.asarray(data)
    idx_array = np.asarray(idx_array)
    node_data = np.asarray(node_data)
    node_bounds = np.asarray(node_bounds)
    if data.ndim != 2:
        raise _fail(where, "its data is not a matrix")
    n_samples, n_dims = data.shape
    n_nodes, n_levels = int(n_nodes), int(n_levels)
    if idx_array.shape != (n_samples,) or (
        n_samples and (idx_array.min() < 0 or idx_array.max() >= n_samples)
    ):
        raise _fail(where, "its sample index points outside its data")
    if n_levels < 1 or n_levels > 62 or n_nodes != 2**n_levels - 1:
        raise _fail(where, "its node count does not match its levels")
    if node_data.shape != (n_nodes,) or node_bounds.ndim != 3:
        raise _fail(where, "its node arrays do not match its node count")
    if node_bounds.shape[1:] != (n_nodes, n_dims):
        raise _fail(where, "its node bounds do not match its nodes and data")
    start = node_data["idx_start"].astype(np.int64)
    end = node_data["idx_end"].astype(np.int64)
    if ((start < 0) | (end > n_samples) | (start > end)).any():
        raise _fail(where, "a node's sample range is outside its data")
    # Children of node i are 2i+1 and 2i+2: an internal node must have both.
    internal = ~node_data["is_leaf"].astype(bool)
    if (2 * np.flatnonzero(internal) + 2 >= n_nodes).any():
        raise _fail(where, "an internal node has no children")
    if sample_weight is not None and np.asarray(sample_weight).shape != (n_samples,):
        raise _fail(where, "its sample weights do not match its data")


def _metric(metric: Any, where: str) -> None:
    state = metric.__getstate__()
    vec, mat = np.asarray(state[1]), np.asarray(state[2])
    if vec.ndim != 1 or mat.ndim != 2:
        raise _fail(where, "its metric parameters have the wrong shape")
    if type(metric).__name__.startswith("Mahalanobis") and mat.shape[0] != mat.shape[1]:
        raise _fail(where, "its Mahalanobis matrix is not square")


# --- other index structures ----------------------------------------------------------------------


def _sparse(matrix: Any, where: str) -> None:
    if matrix.format not in ("csr", "csc", "bsr", "coo"):
        raise _fail(where, f"it holds a {matrix.format} sparse matrix, which no model needs")
    try:
        if matrix.format != "coo":
            matrix.check_format(full_check=True)
        else:
            rows, cols = matrix.shape
            if matrix.nnz and (
                matrix.row.min() < 0
                or matrix.row.max() >= rows
                or matrix.col.min() < 0
                or matrix.col.max() >= cols
            ):
                raise ValueError("an index is out of range")
    except ValueError as exc:
        raise _fail(where, f"its sparse indices are inconsistent ({exc})") from exc


def _spline(spline: Any, where: str) -> None:
    # BSpline evaluation reads len(t) - k - 1 coefficients without checking c's length.
    t, c, k = np.asarray(spline.t), np.asarray(spline.c), spline.k
    if not isinstance(k, (int, np.integer)) or k < 0 or t.ndim != 1:
        raise _fail(where, "its spline degree or knots are malformed")
    if t.shape[0] < 2 * k + 2 or c.ndim < 1 or c.shape[0] < t.shape[0] - k - 1:
        raise _fail(where, "its spline has fewer coefficients than its knots need")
    if not np.isfinite(t).all() or (np.diff(t) < 0).any():
        raise _fail(where, "its spline knots are not sorted finite numbers")


def _estimator(estimator: Any, where: str) -> None:
    n_features = _n_features(estimator)
    centers = getattr(estimator, "cluster_centers_", None)
    # k-means assigns points in compiled loops over the input's width.
    if (
        n_features is not None
        and isinstance(centers, np.ndarray)
        and centers.ndim == 2
        and centers.shape[1] != n_features
    ):
        raise _fail(where, "its cluster centres are not as wide as its input")
    support_vectors = getattr(estimator, "support_vectors_", None)
    n_support = getattr(estimator, "_n_support", None)
    if isinstance(support_vectors, np.ndarray) and isinstance(n_support, np.ndarray):
        _libsvm(estimator, support_vectors, n_support, where)


def _libsvm(estimator: Any, support_vectors: Any, n_support: Any, where: str) -> None:
    # libsvm rebuilds its model from these arrays in C and trusts the counts; classifiers walk
    # the support vectors class by class using n_support.
    total = int(support_vectors.shape[0])
    classifier = getattr(estimator, "_impl", None) in ("c_svc", "nu_svc")
    if classifier and ((n_support < 0).any() or int(n_support.sum()) != total):
        raise _fail(where, "its support vector counts do not match its support vectors")
    if not classifier:
        n_support = np.empty(2)
    support = np.asarray(getattr(estimator, "support_", np.empty(0)))
    if support.shape != (total,):
        raise _fail(where, "its support indices do not match its support vectors")
    dual = np.asarray(getattr(estimator, "_dual_coef_", np.empty((0, 0))))
    n_class = max(n_support.shape[0], 2)
    if dual.ndim != 2 or dual.shape[1] != total or dual.shape[0] not in (1, n_class - 1):
        raise _fail(where, "its dual coefficients do not match its support vectors")
    intercept = np.asarray(getattr(estimator, "_intercept_", np.empty(0)))
    pairs = max(n_class * (n_class - 1) // 2, 1)
    if intercept.shape != (pairs,):
        raise _fail(where, "its intercepts do not match its classes")
    for name in ("_probA", "_probB"):
        values = np.asarray(getattr(estimator, name, np.empty(0)))
        if values.size not in (0, pairs):
            raise _fail(where, f"its {name} does not match its classes")
