"""Regenerates ``registry/allowlist.json`` from the installed libraries.

    python manage.py allowlist_build           # rewrite registry/allowlist.json
    python manage.py allowlist_build --check   # exit 1 if the checked-in file is out of date

Run it after upgrading scikit-learn, numpy, scipy, joblib or skops, review the diff, and commit
it. It is the only place that turns names into objects, and it runs on a developer's machine on
models it fits itself, never on an upload.

How the list is made:

1. Fit a corpus of models on tiny data: every estimator `sklearn.utils.all_estimators` yields that
   fits with its defaults, plus the pipelines people actually upload (scaling + logistic
   regression, ColumnTransformer + OneHotEncoder on text columns, imputers, forests, gradient
   boosting with every loss, histogram gradient boosting with categorical features, SVC with
   probabilities, neighbours with each tree and metric, naive Bayes, k-means, isolation forest,
   MLP, SGD with every loss, ridge, trees with missing values, a text vectorizer, a grid search).
2. Save each with pickle protocols 2-5, joblib and skops, and collect what each file names with
   the scanner's own walker (`registry.scanning.artifact_uses`), so the list is exactly what the
   scanner will be asked about.
3. Sort every name: a class (may be created and given state), a reconstructor (a call the scanner
   has an argument rule for), or a function (held as a value). A function a model calls, or a
   class with an unreviewed ``__setstate__``, stops the build until someone reviews it.
4. Add the public estimator classes and the internal classes their fitted objects hold (losses,
   link functions, distance metrics, neighbour trees), the numpy scalar types used as ``dtype``
   parameters, and the reviewed numeric functions of ``REVIEWED_FUNCTIONS``.
5. Drop ``EXCLUDED`` (each with its reason), then scan every corpus file again with the result:
   all must pass, except those that need an excluded name.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import io
import json
import pickle
import pickletools
import platform
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry import scanning

# Names never listed, whatever the corpus or a sweep finds (a key ending in "." or "*" is a
# prefix).
EXCLUDED: dict[str, str] = {
    "scipy.stats.": (
        "distribution objects rebuild their methods in __setstate__ by exec-ing source text "
        "stored in their state"
    ),
    "numpy.vectorize": "calls the Python function stored in it",
    "numpy.frompyfunc": "wraps an arbitrary Python function as a ufunc",
    "numpy.lib._stride_tricks_impl.": "as_strided and DummyArray make views of arbitrary memory",
    "numpy.lib.stride_tricks.": "as_strided and DummyArray make views of arbitrary memory",
    "numpy.memmap": "opens and maps a file named in its arguments",
    "numpy.lib._npyio_impl.": "reads and writes files",
    "numpy.lib._datasource.": "opens files and URLs",
    "numpy.testing.": "test helpers with side effects",
    "numpy.f2py.": "compiles and loads code",
    "numpy.ctypeslib.": "loads shared libraries and reads raw memory",
    "sklearn.metrics._dist_metrics.PyFuncDistance*": "calls a Python function stored in its state",
    "sklearn.utils._testing.": "test helpers with side effects",
    "sklearn.neighbors._kd_tree.NeighborsHeap*": "query-time scratch space, never in a model",
    "sklearn.neighbors._kd_tree.NodeHeap*": "query-time scratch space, never in a model",
    "sklearn.neighbors._ball_tree.NeighborsHeap*": "query-time scratch space, never in a model",
    "sklearn.neighbors._ball_tree.NodeHeap*": "query-time scratch space, never in a model",
    "sklearn.datasets.": "downloads and reads files",
    "sklearn.tree._export.": "writes tree drawings to files",
    "scipy.odr.": "writes report files named in its state",
    "scipy.io.": "reads and writes files",
    "operator.": "attrgetter, itemgetter and methodcaller are generic getattr and call helpers",
    "builtins.getattr": "generic attribute lookup",
    "builtins.type": "creates classes",
    "sklearn.utils._show_versions.": "inspects the environment",
    "sklearn._config.": "changes process-wide configuration",
    "sklearn.set_config": "changes process-wide configuration",
    "sklearn.config_context": "changes process-wide configuration",
}

# Pure numeric functions a model may hold as a value (FunctionTransformer(func=np.log1p),
# SelectKBest(score_func=f_classif), make_scorer(r2_score), SVC(kernel=rbf_kernel)). Each was
# read: it computes on the arrays it is given, touches no file, global state or attribute by name.
REVIEWED_FUNCTIONS: tuple[str, ...] = (
    *(
        f"numpy.{name}"
        for name in [
            "log",
            "log1p",
            "log2",
            "log10",
            "exp",
            "expm1",
            "exp2",
            "sqrt",
            "cbrt",
            "square",
            "absolute",
            "fabs",
            "sign",
            "negative",
            "reciprocal",
            "sin",
            "cos",
            "tan",
            "arcsin",
            "arccos",
            "arctan",
            "sinh",
            "cosh",
            "tanh",
            "arcsinh",
            "arccosh",
            "arctanh",
            "floor",
            "ceil",
            "rint",
            "trunc",
            "deg2rad",
            "rad2deg",
            "isnan",
            "isfinite",
            "clip",
            "round",
            "nan_to_num",
        ]
    ),
    "scipy.special.expit",
    "scipy.special.logit",
    "scipy.special.erf",
    "scipy.special.log_expit",
    # Converts and validates an array; HistGradientBoosting's categorical preprocessing holds
    # it in a functools.partial (the scanner accepts a partial only of a listed function).
    "sklearn.utils.validation.check_array",
    # Held by fitted estimators as defaults: FeatureAgglomeration(pooling_func=np.mean), the
    # array namespace's asarray, BisectingKMeans' inner k-means step. Compute only.
    "numpy.mean",
    "scipy._lib.array_api_compat.numpy._aliases.asarray",
    "sklearn.cluster._kmeans._kmeans_single_lloyd",
    "sklearn.cluster._kmeans._kmeans_single_elkan",
    "sklearn.feature_selection.f_classif",
    "sklearn.feature_selection.f_regression",
    "sklearn.feature_selection.r_regression",
    "sklearn.feature_selection.chi2",
    "sklearn.feature_selection.mutual_info_classif",
    "sklearn.feature_selection.mutual_info_regression",
    "sklearn.metrics.accuracy_score",
    "sklearn.metrics.balanced_accuracy_score",
    "sklearn.metrics.f1_score",
    "sklearn.metrics.precision_score",
    "sklearn.metrics.recall_score",
    "sklearn.metrics.roc_auc_score",
    "sklearn.metrics.log_loss",
    "sklearn.metrics.r2_score",
    "sklearn.metrics.mean_squared_error",
    "sklearn.metrics.mean_absolute_error",
    "sklearn.metrics.pairwise.rbf_kernel",
    "sklearn.metrics.pairwise.linear_kernel",
    "sklearn.metrics.pairwise.polynomial_kernel",
    "sklearn.metrics.pairwise.cosine_similarity",
)

# Classes whose own __setstate__ was read and only restores data (no code, files or global
# state). A listed class whose __setstate__ comes from elsewhere stops the build for review.
REVIEWED_SETSTATE: frozenset[str] = frozenset(
    {
        "sklearn.base.BaseEstimator",  # version warning, then __dict__.update
        "sklearn.tree._tree.Tree",  # copies node/value arrays after checking their shapes
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # dict + dtype cast
        "sklearn.neighbors._kd_tree.BinaryTree64",  # stores arrays; indices checked by trees.py
        "sklearn.neighbors._kd_tree.BinaryTree32",
        "sklearn.neighbors._ball_tree.BinaryTree64",
        "sklearn.neighbors._ball_tree.BinaryTree32",
        "sklearn.metrics._dist_metrics.DistanceMetric64",  # p, vec, mat (+ func: PyFunc excluded)
        "sklearn.metrics._dist_metrics.DistanceMetric32",
        "sklearn.metrics._dist_metrics.MahalanobisDistance64",  # + a work buffer of mat's size
        "sklearn.metrics._dist_metrics.MahalanobisDistance32",
        "numpy.ndarray",  # checked by the scanner: shape, dtype, data length
        "numpy.ma.MaskedArray",
        "numpy.ma.core.MaskedArray",
        "numpy.dtype",
        "numpy.random.mtrand.RandomState",  # checked by the scanner: key position
        "numpy.random.bit_generator.BitGenerator",
        "numpy.random.bit_generator.SeedSequence",
        "numpy.random._generator.Generator",
        "sklearn.utils._bunch.Bunch",  # dict items
        "sklearn.isotonic.IsotonicRegression",  # rebuilds its interpolator from its arrays
        "functools.partial",  # checked by the scanner: a listed function and data
        "numpy.generic",  # numpy scalars: the scanner refuses creating them other than by scalar()
        "collections.OrderedDict",
        "collections.defaultdict",
    }
)

# Python containers and numpy scalar types models hold as values (dtype=np.float64, etc.).
BASE_CLASSES: tuple[str, ...] = (
    *(
        f"builtins.{name}"
        for name in [
            "object",
            "int",
            "float",
            "complex",
            "bool",
            "str",
            "bytes",
            "bytearray",
            "list",
            "tuple",
            "dict",
            "set",
            "frozenset",
            "slice",
        ]
    ),
    "collections.OrderedDict",
    "collections.defaultdict",
    *(f"numpy.{name}" for name in sorted(scanning._NUMPY_SCALAR_NAMES)),
    "numpy.ndarray",
    "joblib.numpy_pickle.NumpyArrayWrapper",
    scanning.PARTIAL,
    *scanning.BIT_GENERATORS.values(),
    scanning.RANDOM_STATE,
    scanning.GENERATOR,
    scanning.SEED_SEQUENCE,
)
# Reconstructors listed even when the corpus does not need them: the forms older numpy versions
# and protocol 0-style helpers write, each under the scanner's argument rule.
BASE_RECONSTRUCTORS: tuple[str, ...] = (
    "copyreg._reconstructor",
    "copyreg.__newobj__",
    "_codecs.encode",
    "numpy.dtype",
    "numpy._core.multiarray._reconstruct",
    "numpy._core.multiarray.scalar",
    "numpy._core.numeric._frombuffer",
    "numpy.core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy.core.numeric._frombuffer",
    "numpy.core._ufunc_reconstruct",
    "numpy.ma.core._mareconstruct",
    "numpy.random._pickle.__bit_generator_ctor",
    "numpy.random._pickle.__generator_ctor",
    "numpy.random._pickle.__randomstate_ctor",
)
# Modules whose classes fitted objects hold without the user naming them.
SWEPT_MODULES: tuple[str, ...] = (
    "sklearn._loss.loss",
    "sklearn._loss.link",
    "sklearn._loss._loss",
    "sklearn.linear_model._sgd_fast",
    "sklearn.metrics._dist_metrics",
    "sklearn.neighbors._kd_tree",
    "sklearn.neighbors._ball_tree",
    "sklearn.gaussian_process.kernels",
)
LIBRARIES = ("scikit-learn", "numpy", "scipy", "joblib", "skops")


class AllowlistError(Exception):
    """The allowlist cannot be built without someone reviewing what the corpus needs."""


def excluded(name: str) -> str | None:
    """Why `name` is never listed, or None."""
    for key, reason in EXCLUDED.items():
        if name == key or (key.endswith((".", "*")) and name.startswith(key.rstrip("*"))):
            return reason
    return None


# --- the corpus ----------------------------------------------------------------------------------


def _data() -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(40, 4))) + 0.1
    y = np.where(X[:, 0] + X[:, 1] > X[:, 2] + X[:, 3], 1, 0)
    y3 = (X[:, 0] * 3).astype(int) % 3
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    frame["city"] = np.array(["paris", "lyon", "nice", "lille"])[np.arange(40) % 4]
    frame["size"] = pd.Categorical(np.array(["s", "m", "l"])[np.arange(40) % 3])
    with_nan = X.copy()
    with_nan[::7, 1] = np.nan
    texts = [f"the {w} model predicts {v}" for w, v in zip("ab" * 20, "xyz" * 14, strict=False)]
    return {
        "X": X,
        "y": y,
        "y3": y3,
        "yr": X[:, 0] * 2 + X[:, 1],
        "Yr": X[:, :2] * 2,
        "frame": frame,
        "nan": with_nan,
        "texts": texts,
    }


# Smaller than the defaults, same objects: a forest of 3 trees pickles the same names as one of
# 100, and the corpus fits and scans in seconds.
_SMALL_PARAMS: dict[str, Any] = {
    "n_estimators": 3,
    "max_iter": 5,
    "n_init": 1,
    "cv": 2,
    "Cs": 2,
    "n_alphas": 3,
    "n_components": 2,
    "max_subpopulation": 50,
    "perplexity": 5.0,
}


# Listed as classes like every estimator, but not fitted for the corpus.
_NOT_FITTED = {"TSNE": "an embedding with no predict; seconds to fit even on tiny data"}


def _shrink(estimator: Any) -> None:
    params = estimator.get_params(deep=False)
    small = {
        name: value
        for name, value in _SMALL_PARAMS.items()
        if name in params
        and (params[name] is None or isinstance(params[name], (int, float)))
        and not isinstance(params[name], bool)
    }
    for name, value in small.items():
        try:
            estimator.set_params(**{name: value})
        except ValueError:
            continue


def _fit_default(cls: type, d: dict[str, Any]) -> Any:
    """cls() fitted on tiny data the way its kind expects, or None if that does not work."""
    from sklearn.base import ClassifierMixin, RegressorMixin

    attempts: list[tuple[Any, ...]]
    # Mixins, not tags: meta-estimators without a sub-estimator cannot report tags.
    if issubclass(cls, ClassifierMixin):
        attempts = [(d["X"], d["y"])]
    elif issubclass(cls, RegressorMixin):
        attempts = [(d["X"], d["yr"]), (d["X"][:, 0], d["yr"]), (d["X"], d["Yr"])]
    else:
        attempts = [(d["X"],), (d["X"], d["y"]), (d["texts"],), (d["y"],), (d["X"], d["Yr"])]
    for shrink in (True, False):
        try:
            estimator = cls()
        except TypeError:
            return None
        if shrink:
            _shrink(estimator)
        for args in attempts:
            try:
                return estimator.fit(*args)
            except Exception:  # noqa: S112 - estimators that need other data are skipped
                continue
    return None


def _realistic(d: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """The models people upload, in the configurations that change what gets pickled."""
    import numpy as np
    from sklearn import (
        decomposition,
        ensemble,
        feature_selection,
        gaussian_process,
        linear_model,
        multiclass,
        multioutput,
        neighbors,
        random_projection,
        svm,
        tree,
    )
    from sklearn.cluster import KMeans
    from sklearn.compose import (
        ColumnTransformer,
        TransformedTargetRegressor,
        make_column_selector,
    )
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.feature_selection import SelectKBest, f_classif
    from sklearn.gaussian_process import kernels
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import GridSearchCV
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    X, y, y3, yr, frame = d["X"], d["y"], d["y3"], d["yr"], d["frame"]
    yield "scaler+logistic", make_pipeline(StandardScaler(), linear_model.LogisticRegression())
    yield "logistic multiclass", (linear_model.LogisticRegression(), y3)
    columns = ColumnTransformer(
        [
            ("num", StandardScaler(), make_column_selector(dtype_include=np.number)),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )
    yield "columns+onehot", (make_pipeline(columns, linear_model.LogisticRegression()), y, frame)
    yield (
        "imputer+forest",
        (
            make_pipeline(SimpleImputer(), ensemble.RandomForestClassifier(n_estimators=3)),
            y,
            d["nan"],
        ),
    )
    yield "forest", ensemble.RandomForestClassifier(n_estimators=3, random_state=0)
    yield (
        "forest rng",
        ensemble.RandomForestRegressor(n_estimators=2, random_state=np.random.RandomState(0)),
    )
    yield "extra trees", ensemble.ExtraTreesClassifier(n_estimators=2)
    yield "tree nan", (tree.DecisionTreeClassifier(), y, d["nan"])
    for loss in ("log_loss", "exponential"):
        yield f"gb {loss}", ensemble.GradientBoostingClassifier(n_estimators=2, loss=loss)
    yield "gb multiclass", (ensemble.GradientBoostingClassifier(n_estimators=2), y3)
    for loss in ("squared_error", "absolute_error", "huber", "quantile"):
        yield f"gbr {loss}", ensemble.GradientBoostingRegressor(n_estimators=2, loss=loss)
    yield "hgb", ensemble.HistGradientBoostingClassifier(max_iter=3)
    yield "hgb multiclass", (ensemble.HistGradientBoostingClassifier(max_iter=3), y3)
    for loss in ("squared_error", "absolute_error", "gamma", "poisson", "quantile"):
        params = {"quantile": 0.8} if loss == "quantile" else {}
        yield (
            f"hgbr {loss}",
            ensemble.HistGradientBoostingRegressor(max_iter=3, loss=loss, **params),
        )
    yield (
        "hgb categorical",
        (
            ensemble.HistGradientBoostingClassifier(max_iter=3, categorical_features="from_dtype"),
            y,
            frame.drop(columns=["city"]),
        ),
    )
    yield (
        "hgb categorical mask",
        (
            ensemble.HistGradientBoostingRegressor(max_iter=3, categorical_features=[3]),
            yr,
            np.column_stack([X[:, :3], np.arange(40) % 4]),
        ),
    )
    yield "svc proba", svm.SVC(probability=True)
    yield (
        "gaussian process",
        gaussian_process.GaussianProcessRegressor(
            kernels.ConstantKernel() * kernels.Matern() + kernels.WhiteKernel()
        ),
    )
    for algorithm in ("kd_tree", "ball_tree", "brute"):
        yield f"knn {algorithm}", neighbors.KNeighborsClassifier(algorithm=algorithm)
    metrics: tuple[tuple[str, dict[str, Any]], ...] = (
        ("manhattan", {}),
        ("chebyshev", {}),
        ("minkowski", {"p": 3}),
        ("minkowski", {"p": 3, "w": np.ones(4)}),
        ("seuclidean", {"V": np.ones(4)}),
        ("mahalanobis", {"VI": np.eye(4)}),
    )
    for metric, params in metrics:
        for algorithm in ("ball_tree", "brute"):
            yield (
                f"knn {metric} {algorithm}",
                neighbors.KNeighborsRegressor(
                    algorithm=algorithm, metric=metric, metric_params=params
                ),
            )
    yield "gaussian nb", GaussianNB()
    yield "kmeans", KMeans(n_clusters=2, n_init=1)
    yield "isolation forest", ensemble.IsolationForest(n_estimators=3)
    yield "mlp", MLPClassifier(max_iter=20)
    yield "mlp regressor", MLPRegressor(max_iter=20)
    for loss in ("hinge", "log_loss", "modified_huber", "squared_hinge", "perceptron"):
        yield f"sgd {loss}", linear_model.SGDClassifier(loss=loss)
    for loss in ("squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive"):
        yield f"sgdr {loss}", linear_model.SGDRegressor(loss=loss)
    yield "ridge", linear_model.Ridge()
    yield "tree", tree.DecisionTreeClassifier()
    yield "tree regressor", tree.DecisionTreeRegressor()
    yield "log1p", make_pipeline(FunctionTransformer(np.log1p), linear_model.LogisticRegression())
    yield "kbest", make_pipeline(SelectKBest(f_classif, k=2), linear_model.LogisticRegression())
    yield (
        "target transform",
        TransformedTargetRegressor(linear_model.Ridge(), func=np.log1p, inverse_func=np.expm1),
    )
    yield (
        "tfidf",
        (
            make_pipeline(TfidfVectorizer(), linear_model.LogisticRegression()),
            y,
            d["texts"],
        ),
    )
    yield "grid search", GridSearchCV(tree.DecisionTreeClassifier(), {"max_depth": [1, 2]}, cv=2)
    logistic, small_tree = linear_model.LogisticRegression(), tree.DecisionTreeClassifier()
    yield "voting", ensemble.VotingClassifier([("lr", logistic), ("tree", small_tree)])
    yield "stacking", ensemble.StackingClassifier([("lr", logistic), ("tree", small_tree)], cv=2)
    yield "one vs rest", (multiclass.OneVsRestClassifier(logistic), y3)
    yield (
        "select from model",
        (
            make_pipeline(feature_selection.SelectFromModel(logistic), linear_model.Ridge()),
            y,
        ),
    )
    yield (
        "feature union",
        make_pipeline(
            make_union(StandardScaler(), decomposition.PCA(n_components=2)), linear_model.Ridge()
        ),
    )
    yield "multi output", (multioutput.MultiOutputRegressor(linear_model.Ridge()), d["Yr"])
    yield "sparse projection", (random_projection.SparseRandomProjection(n_components=2), y)
    yield (
        "dict vectorizer",
        (
            make_pipeline(DictVectorizer(), linear_model.LogisticRegression()),
            y,
            [{"city": c, "n": float(i)} for i, c in enumerate(frame["city"])],
        ),
    )


def _realistic_fitted(d: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    from sklearn.base import is_regressor

    for name, spec in _realistic(d):
        if isinstance(spec, tuple):
            model, target, *rest = spec
            data = rest[0] if rest else d["X"]
        else:
            model, data = spec, d["X"]
            target = d["yr"] if is_regressor(model) else d["y"]
        yield name, model.fit(data, target)


@dataclass
class Corpus:
    """The fitted models and the names their saved files use."""

    uses: dict[str, set[str]] = field(default_factory=dict)
    files: list[tuple[str, Path, str]] = field(default_factory=list)  # (model, path, format)
    skipped: list[str] = field(default_factory=list)


def _save_all(name: str, model: Any, folder: Path, corpus: Corpus) -> None:
    import joblib
    import skops.io as sio

    stem = folder / f"m{len(corpus.files)}"
    outputs: list[tuple[Path, str, Callable[[Path], None]]] = [
        (stem.with_suffix(f".p{p}"), "pickle", _pickler(model, p)) for p in (2, 3, 4, 5)
    ]
    outputs.append((stem.with_suffix(".joblib"), "joblib", lambda path: joblib.dump(model, path)))
    outputs.append((stem.with_suffix(".skops"), "skops", lambda path: sio.dump(model, path)))
    for path, fmt, save in outputs:
        try:
            save(path)
        except Exception as exc:  # skops does not support every object; pickle always does
            if fmt != "skops":
                raise AllowlistError(f"cannot save {name} as {fmt}: {exc}") from exc
            corpus.skipped.append(f"{name} ({fmt}: {exc.__class__.__name__})")
            continue
        try:
            found = scanning.artifact_uses(path=path, fmt=fmt)
        except scanning.ScanError as exc:
            raise AllowlistError(f"{name} saved as {fmt} breaks a scanner rule: {exc}") from exc
        for dotted, uses in found.items():
            corpus.uses.setdefault(dotted, set()).update(uses)
        corpus.files.append((name, path, fmt))


def _pickler(model: Any, protocol: int) -> Callable[[Path], None]:
    def save(path: Path) -> None:
        path.write_bytes(pickle.dumps(model, protocol=protocol))

    return save


def corpus_build(folder: Path) -> Corpus:
    """Fit the corpus and save every model in every format under `folder`."""
    from sklearn.utils import all_estimators

    corpus = Corpus()
    d = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, cls in all_estimators():
            if name in _NOT_FITTED:
                corpus.skipped.append(f"{name} ({_NOT_FITTED[name]})")
                continue
            model = _fit_default(cls, d)
            if model is None:
                corpus.skipped.append(f"{name} (needs arguments or other data)")
                continue
            _save_all(name, model, folder, corpus)
        for name, model in _realistic_fitted(d):
            _save_all(name, model, folder, corpus)
    return corpus


# --- sorting names -------------------------------------------------------------------------------


def _resolve(dotted: str) -> Any:
    """The object a pickle naming `dotted` would get (trusted corpus names only)."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise AllowlistError(f"cannot import {dotted}")


def _qualified(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def _pickled_names(obj: Any) -> set[str]:
    """The names pickle and skops write for a function."""
    names = set()
    for op, arg, _pos in pickletools.genops(pickle.dumps(obj, protocol=2)):
        if op.name == "GLOBAL":
            module, _, name = str(arg).partition(" ")
            names.add(f"{module}.{name}")
    from skops.io._utils import get_module

    names.add(f"{get_module(obj)}.{obj.__name__}")
    return names


def _setstate_owner(cls: type) -> str | None:
    """Where cls's __setstate__ comes from, if not from object."""
    for base in cls.__mro__:
        method = vars(base).get("__setstate__")
        if method is None:
            continue
        if getattr(method, "__name__", "") == "__setstate_cython__":
            return None  # Cython's generated pickling: typed fields only, no code
        return _qualified(base)
    return None


def _swept_classes() -> set[str]:
    names = set()
    for module_name in SWEPT_MODULES:
        module = importlib.import_module(module_name)
        for obj in vars(module).values():
            if inspect.isclass(obj) and obj.__module__ == module_name:
                names.add(_qualified(obj))
    return names


def _estimator_classes() -> set[str]:
    from sklearn.utils import all_estimators

    return {_qualified(cls) for _name, cls in all_estimators()}


@dataclass
class Built:
    data: dict[str, Any]
    corpus: Corpus
    refused: list[str]


def allowlist_build() -> Built:
    """Build the allowlist from the installed libraries (fits and saves the corpus)."""
    with tempfile.TemporaryDirectory(prefix="allowlist-") as tmp, warnings.catch_warnings():
        # numpy.core aliases and the corpus's tiny fits warn; none of it matters here.
        warnings.simplefilter("ignore")
        corpus = corpus_build(Path(tmp))
        data = _sort_names(corpus)
        allowlist = scanning.Allowlist.from_data(data)
        refused = _verify(corpus, allowlist)
    return Built(data=data, corpus=corpus, refused=refused)


def _sort_names(corpus: Corpus) -> dict[str, Any]:
    classes: set[str] = set()
    functions: set[str] = set()
    reconstructors: dict[str, str] = {}
    problems: list[str] = []
    for dotted, uses in sorted(corpus.uses.items()):
        if excluded(dotted):
            continue
        rule = scanning.reconstructor_rule_for(dotted)
        if rule is not None:
            reconstructors[dotted] = rule
            continue
        obj = _resolve(dotted)
        if inspect.isclass(obj):
            classes.add(dotted)
        elif "call" in uses or "new" in uses:
            problems.append(f"{dotted} is called by a saved model but has no argument rule")
        else:
            functions.add(dotted)
    for dotted in (*BASE_CLASSES, *_swept_classes(), *_estimator_classes()):
        if not excluded(dotted):
            classes.add(dotted)
    for dotted in BASE_RECONSTRUCTORS:
        rule = scanning.reconstructor_rule_for(dotted)
        assert rule is not None, dotted
        try:
            _resolve(dotted)
        except (AllowlistError, AttributeError):
            continue
        reconstructors[dotted] = rule
    # Cython classes pickle through their module's __pyx_unpickle_X, BinaryTree and
    # DistanceMetric through their module's newObj: list them with the classes.
    for dotted in sorted(classes):
        module = sys.modules.get(dotted.rpartition(".")[0])
        if module is None:
            continue
        attr = dotted.rpartition(".")[2]
        for helper in (f"__pyx_unpickle_{attr}", "newObj"):
            if hasattr(module, helper):
                name = f"{module.__name__}.{helper}"
                rule = scanning.reconstructor_rule_for(name)
                if rule is not None:
                    reconstructors[name] = rule
    reviewed: set[str] = set()
    for path in REVIEWED_FUNCTIONS:
        try:
            reviewed.update(_pickled_names(_resolve(path)))
        except (AllowlistError, AttributeError):
            continue
    unreviewed = sorted(functions - reviewed)
    if unreviewed:
        problems.append(f"functions the corpus holds but nobody reviewed: {unreviewed}")
    functions |= {name for name in reviewed if not excluded(name)}
    for dotted in sorted(classes):
        owner = _setstate_owner(_resolve(dotted))
        if owner is not None and owner not in REVIEWED_SETSTATE and not excluded(owner):
            problems.append(f"{dotted} restores its state with {owner}.__setstate__ (review it)")
    if problems:
        raise AllowlistError("; ".join(problems))
    classes -= set(reconstructors)
    return {
        "generated_with": _versions(),
        "classes": sorted(classes),
        "reconstructors": {
            name: {"rule": rule, "accepts": scanning.RECONSTRUCTOR_RULE_DESCRIPTIONS[rule]}
            for name, rule in sorted(reconstructors.items())
        },
        "functions": sorted(functions),
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    versions = {"python": ".".join(platform.python_version_tuple()[:2])}
    versions.update({name: version(name) for name in LIBRARIES})
    return versions


def _verify(corpus: Corpus, allowlist: scanning.Allowlist) -> list[str]:
    """Every corpus file passes the strict scan, unless it needs an excluded name."""
    refused = []
    for name, path, fmt in corpus.files:
        try:
            scanning.artifact_scan(path=path, fmt=fmt, allowlist=allowlist)
        except scanning.ScanError as exc:
            needs = [n for n in corpus_names(path, fmt) if excluded(n)]
            if not needs:
                raise AllowlistError(f"{name} ({fmt}) fails the scan: {exc}") from exc
            refused.append(f"{name} ({fmt}): needs {', '.join(sorted(needs))}")
    return refused


def corpus_names(path: Path, fmt: str) -> set[str]:
    return set(scanning.artifact_uses(path=path, fmt=fmt))


def allowlist_text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=False) + "\n"


def allowlist_diff(new_text: str, path: Path = scanning.ALLOWLIST_PATH) -> str:
    """A unified diff from the checked-in file to `new_text` ('' when they agree)."""
    old_text = path.read_text() if path.exists() else ""
    return "".join(
        difflib.unified_diff(
            io.StringIO(old_text).readlines(),
            io.StringIO(new_text).readlines(),
            fromfile="allowlist.json (checked in)",
            tofile="allowlist.json (installed libraries)",
        )
    )
