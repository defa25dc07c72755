"""Hostile artifacts made only of scikit-learn, numpy and scipy parts, one section per class of
bypass: each is refused by the static scan (or, for corrupt trees, by trees_check after load), with
nothing happening — no marker file, no module imported, no process-wide state changed, bounded time.

Every payload here is built by the test itself, by hand-assembled opcodes or by `Forged` objects
whose reduce tuple pickle writes out. Where it is safe, a test first shows the payload is live
(plain pickle runs it), so a refusal means something.
"""

import contextlib
import copyreg
import encodings.cp437  # noqa: F401 - zipfile decodes entry names with it; imported up front
import functools
import importlib
import io
import json
import os
import pickle
import struct
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import lz4.frame  # noqa: F401 - imported before any scan, so a scan that imports nothing shows it
import numpy as np
import pytest
import scipy.stats
import sklearn
import skops.io as sio
from numpy.random import _pickle as np_random_pickle
from numpy.random.bit_generator import SeedSequence
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    IsolationForest,
    RandomForestClassifier,
)
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, SplineTransformer, StandardScaler
from sklearn.random_projection import SparseRandomProjection
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils._response import _get_response_values

from registry.scanning import ScanError, ScanLimits, artifact_scan
from registry.trees import TreeError, trees_check
from tests.registry.conftest import Forged, PickleAsm, compressed, skops_archive

# How a pickle stream reaches the scanner: as a .pkl, and as .joblib plain and compressed.
FORMS = ["pickle", "joblib", "joblib-zlib", "joblib-bz2", "joblib-xz", "joblib-lz4"]


def as_file(tmp_path: Path, data: bytes, form: str, name: str = "evil") -> tuple[Path, str]:
    if form == "pickle":
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(data)
        return path, "pickle"
    path = tmp_path / f"{name}-{form}.joblib"
    path.write_bytes(data if form == "joblib" else compressed(data, form.split("-")[1]))
    return path, "joblib"


def refused(path: Path, fmt: str, match: str | None = None, **kwargs: Any) -> str:
    """Scan and expect a refusal, checking that the scan imported nothing."""
    before = set(sys.modules)
    with pytest.raises(ScanError, match=match) as caught:
        artifact_scan(path=path, fmt=fmt, **kwargs)
    assert set(sys.modules) - before == set(), "the scan imported a module"
    message = str(caught.value)
    assert message.startswith("Refused: ")
    return message


def refused_everywhere(tmp_path: Path, data: bytes, match: str | None = None) -> None:
    for form in FORMS:
        path, fmt = as_file(tmp_path, data, form)
        refused(path, fmt, match)


def text(value: str) -> Callable[[PickleAsm], Any]:
    return lambda asm: asm.text(value)


def schema_of(data: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return json.loads(archive.read("schema.json"))


def rezip(data: bytes, schema: dict[str, Any]) -> bytes:
    """The same skops file with an edited schema."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for info in source.infolist():
            payload = source.read(info.filename)
            if info.filename == "schema.json":
                payload = json.dumps(schema).encode()
            archive.writestr(info.filename, payload)
    return out.getvalue()


def nodes_where(tree: Any, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    found, pending = [], [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if predicate(node):
                found.append(node)
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 4))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


# --- 1. classes whose __setstate__ runs text from the file ---------------------------------------

TEMPLATE = (
    "open({marker!r}, 'w').close()\n"
    "def _parse_args(*a, **k): return a\n"
    "def _parse_args_stats(*a, **k): return a\n"
    "def _parse_args_rvs(*a, **k): return a\n"
)
DISTRIBUTIONS = [
    "scipy.stats._continuous_distns.norm_gen",
    "scipy.stats._continuous_distns.gamma_gen",
    "scipy.stats._discrete_distns.poisson_gen",
]


def distribution(marker: Path, cls: str, protocol: int = 2) -> bytes:
    """A distribution object whose argument-parser template (exec'd on load) writes a file."""
    asm = PickleAsm(protocol).glob(cls).tup(0).newobj().empty_dict()
    asm.text("_parse_arg_template").text(TEMPLATE.format(marker=str(marker))).setitem()
    return asm.build().stop()


def test_a_distribution_template_runs_when_plainly_unpickled(marker: Path) -> None:
    # given the hand-made distribution, when plain pickle loads it, then its text runs
    with contextlib.suppress(Exception):
        pickle.loads(distribution(marker, DISTRIBUTIONS[0]))  # noqa: S301 - shows the payload
    assert marker.exists()


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("cls", DISTRIBUTIONS)
def test_distribution_objects_that_exec_their_state_are_refused(
    cls: str, protocol: int, marker: Path, tmp_path: Path
) -> None:
    # given distribution objects carrying a template, in every container
    payload = distribution(marker, cls, protocol)

    # when / then the scan refuses them by name and nothing runs
    refused_everywhere(tmp_path, payload, match=cls.replace(".", r"\."))
    assert not marker.exists()


def test_a_real_frozen_distribution_in_a_pipeline_is_refused(tmp_path: Path) -> None:
    # given an ordinary pipeline carrying a scipy frozen distribution in a step's attributes
    step = StandardScaler()
    step.prior = scipy.stats.norm(loc=1.0)
    path = tmp_path / "prior.joblib"
    joblib.dump(make_pipeline(step), path)

    # then it is refused, naming the distribution machinery
    refused(path, "joblib", match=r"scipy\.stats")


def test_skops_reaching_a_distribution_through_an_estimators_state_is_refused(
    marker: Path, tmp_path: Path
) -> None:
    # given a skops file whose trusted estimator holds a distribution, with a template added
    data = sio.dumps(FunctionTransformer(kw_args={"prior": scipy.stats.norm()}))
    schema = schema_of(data)
    for node in nodes_where(schema, lambda n: n.get("__class__") == "norm_gen"):
        node["content"]["content"]["_parse_arg_template"] = {
            "__class__": "str",
            "__module__": "builtins",
            "__loader__": "JsonNode",
            "content": json.dumps(TEMPLATE.format(marker=str(marker))),
            "is_json": True,
        }
    path = tmp_path / "prior.skops"
    path.write_bytes(rezip(data, schema))

    # then the scan refuses it, although skops itself would ask only to trust two names
    refused(path, "skops", match=r"scipy\.stats")
    assert not marker.exists()


def test_hand_made_skops_distribution_object_is_refused(marker: Path, tmp_path: Path) -> None:
    schema = {
        "__class__": "norm_gen",
        "__module__": "scipy.stats._continuous_distns",
        "__loader__": "ObjectNode",
        "content": {
            "__class__": "dict",
            "__module__": "builtins",
            "__loader__": "DictNode",
            "content": {
                "_parse_arg_template": {
                    "__class__": "str",
                    "__module__": "builtins",
                    "__loader__": "JsonNode",
                    "content": json.dumps(TEMPLATE.format(marker=str(marker))),
                }
            },
            "key_types": {
                "__class__": "list",
                "__module__": "builtins",
                "__loader__": "ListNode",
                "content": [
                    {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"}
                ],
            },
        },
        "protocol": 2,
    }
    path = tmp_path / "dist.skops"
    path.write_bytes(skops_archive(schema))

    refused(path, "skops", match="norm_gen")
    assert not marker.exists()


# --- 2. generic getattr / call gadgets and source-pasting helpers ------------------------------

GADGETS = [
    "sklearn.utils._response._get_response_values",  # calls a method named by its argument
    "sklearn.utils.validation._check_response_method",  # getattr by a name from its argument
    "sklearn.utils._available_if._AvailableIfDescriptor",  # calls a stored check on access
    "sklearn.preprocessing._function_transformer._identity",  # private helper, never a model part
    "numpy.vectorize",  # calls the function stored in it
    "numpy.frompyfunc",  # turns any function into a ufunc
    "scipy._lib._bunch._make_tuple_bunch",  # pastes names into source it execs
    "scipy.optimize._nonlin._nonlin_wrapper",  # pastes a name into source it execs
    "builtins.getattr",
    "operator.attrgetter",
    "operator.methodcaller",
    "functools.reduce",
]


def _exists(dotted: str) -> bool:
    module, _, name = dotted.rpartition(".")
    return hasattr(importlib.import_module(module), name)


@pytest.mark.parametrize("gadget", GADGETS)
def test_call_and_getattr_gadgets_are_refused_by_name(gadget: str, tmp_path: Path) -> None:
    # given a pickle calling a helper that exists in the installed libraries
    assert _exists(gadget)
    payload = PickleAsm(4).call(gadget, text("os"), text("system")).stop()

    # then it is refused, naming the helper, in every container
    refused_everywhere(tmp_path, payload, match=gadget.replace(".", r"\."))


@pytest.mark.parametrize(
    ("module", "name"),
    [("os", "system"), ("builtins", "eval"), ("numpy", "save"), ("numpy.lib", "stride_tricks")],
)
def test_the_ufunc_reconstructor_imports_only_listed_functions(
    module: str, name: str, tmp_path: Path
) -> None:
    # given numpy's ufunc reconstructor (a listed helper) asked for something else
    payload = PickleAsm(2).call("numpy.core._ufunc_reconstruct", text(module), text(name)).stop()

    # then the argument rule refuses it
    refused_everywhere(tmp_path, payload, match="not an allowed function")


def test_the_ufunc_reconstructor_needs_literal_names(tmp_path: Path) -> None:
    # given the module name produced by another call rather than written as text
    payload = (
        PickleAsm(2)
        .call(
            "numpy.core._ufunc_reconstruct",
            lambda asm: asm.call("_codecs.encode", text("numpy"), text("latin1")),
            text("log1p"),
        )
        .stop()
    )

    refused_everywhere(tmp_path, payload, match="other than two names")


def test_a_listed_ufunc_may_be_rebuilt_but_not_called(tmp_path: Path) -> None:
    # given numpy's own ufunc pickle form, which is allowed
    rebuilt = PickleAsm(2).call("numpy.core._ufunc_reconstruct", text("numpy"), text("log1p"))
    path, fmt = as_file(tmp_path, rebuilt.stop(), "pickle", name="ufunc")
    assert artifact_scan(path=path, fmt=fmt).globals == {"numpy.core._ufunc_reconstruct"}

    # when the rebuilt function is then called, it is refused
    called = PickleAsm(2).call("numpy.core._ufunc_reconstruct", text("numpy"), text("log1p"))
    payload = called.mark().text("x").tup().reduce().stop()
    refused_everywhere(tmp_path, payload, match=r"calls numpy\.log1p")


def test_vectorize_holding_eval_is_refused(tmp_path: Path) -> None:
    payload = (
        PickleAsm(2)
        .glob("numpy.vectorize")
        .tup(0)
        .newobj()
        .empty_dict()
        .text("pyfunc")
        .glob("builtins.eval")
        .setitem()
        .build()
        .stop()
    )

    refused_everywhere(tmp_path, payload, match=r"numpy\.vectorize")


@pytest.mark.parametrize(
    ("func", "match"),
    [
        ("builtins.eval", r"builtins\.eval"),
        ("numpy.ndarray", "must be an allowed function"),
        ("copyreg._reconstructor", "as a value"),
    ],
)
def test_a_partial_cannot_be_switched_to_another_callable(
    func: str, match: str, tmp_path: Path
) -> None:
    # given a partial of a listed function whose state then swaps the function
    payload = (
        PickleAsm(2)
        .call("functools.partial", lambda asm: asm.glob("numpy.log1p"))
        .mark()
        .glob(func)
        .tup(0)
        .none()
        .none()
        .tup()
        .build()
        .stop()
    )

    refused_everywhere(tmp_path, payload, match=match)


# --- 3. functions and modes that write, delete or read files -----------------------------------

FILE_FUNCTIONS = [
    "sklearn.tree._export.export_graphviz",
    "numpy._core._methods._dump",
    "numpy.save",
    "numpy.savetxt",
    "numpy.lib._npyio_impl.savez",
    "numpy.load",
    "numpy.fromfile",
    "numpy.memmap",
    "scipy.odr._odrpack.ODR",
    "scipy.io.savemat",
    "scipy.optimize._lbfgsb_py.fmin_l_bfgs_b",
    "builtins.open",
    "io.open",
    "os.remove",
    "shutil.rmtree",
]


def test_numpy_memmap_creates_its_file_when_plainly_unpickled(marker: Path) -> None:
    payload = (
        PickleAsm(2)
        .call(
            "numpy.memmap",
            text(str(marker)),
            text("uint8"),
            text("w+"),
            lambda asm: asm.integer(0),
            lambda asm: asm.integer(8).tup(1),
        )
        .stop()
    )

    pickle.loads(payload)  # noqa: S301 - shows the payload is live

    assert marker.exists()


@pytest.mark.parametrize("function", FILE_FUNCTIONS)
def test_functions_that_touch_files_are_refused(
    function: str, marker: Path, tmp_path: Path
) -> None:
    # given a pickle calling it with the marker as the path
    assert _exists(function)
    payload = (
        PickleAsm(2)
        .call(function, text(str(marker)), text("w+"), lambda asm: asm.integer(0))
        .stop()
    )

    # then it is refused by name and no file appears
    refused_everywhere(tmp_path, payload, match=function.replace(".", r"\."))
    assert not marker.exists()


def test_a_text_vectorizer_in_filename_mode_reads_files(tmp_path: Path) -> None:
    # given a vectorizer told to treat its inputs as paths: it reads whatever it is sent
    secret = tmp_path / "secret.txt"
    secret.write_text("token token")
    vectorizer = CountVectorizer(input="filename").fit([str(secret)])

    assert vectorizer.transform([str(secret)]).sum() == 2


@pytest.mark.parametrize("mode", ["filename", "file"])
@pytest.mark.parametrize("cls", [CountVectorizer, TfidfVectorizer])
def test_text_vectorizers_reading_files_are_refused_in_every_format(
    cls: type, mode: str, tmp_path: Path
) -> None:
    # given a pipeline whose vectorizer reads its inputs as files
    pipeline = make_pipeline(cls(input=mode), LogisticRegression())
    pickled = tmp_path / "text.pkl"
    pickled.write_bytes(pickle.dumps(pipeline, protocol=4))
    dumped = tmp_path / "text.joblib"
    joblib.dump(pipeline, dumped, compress=3)
    skopsed = tmp_path / "text.skops"
    sio.dump(pipeline, skopsed)

    # then every format is refused with the reason
    for path, fmt in ((pickled, "pickle"), (dumped, "joblib"), (skopsed, "skops")):
        refused(path, fmt, match="read its input from files")


def _vectorizer_with(key: Callable[[PickleAsm], Any], value: str) -> bytes:
    asm = PickleAsm(2).glob("sklearn.feature_extraction.text.CountVectorizer").tup(0).newobj()
    asm.empty_dict()
    key(asm)
    return asm.text(value).setitem().build().stop()


def test_an_input_key_that_is_not_text_is_refused(tmp_path: Path) -> None:
    # given the state key 'input' written as a numpy string, which equals 'input' once loaded

    def numpy_input(asm: PickleAsm) -> None:
        asm.glob("numpy._core.multiarray.scalar").mark()
        asm.call("numpy.dtype", text("U5"), lambda a: a.false(), lambda a: a.true())
        asm.mark().integer(3).text("<").none().none().none().integer(20).integer(4).integer(8)
        asm.tup().build()
        asm.data("input".encode("utf-32-le")).tup().reduce()

    payload = _vectorizer_with(numpy_input, "filename")

    refused_everywhere(tmp_path, payload, match="named by something other than text")


def test_switching_an_objects_class_after_setting_its_state_is_refused(tmp_path: Path) -> None:
    # given a plain object given input='filename', then re-classed as a vectorizer
    payload = (
        PickleAsm(2)
        .glob("sklearn.utils._bunch.Bunch")
        .tup(0)
        .newobj()
        .mark()
        .empty_dict()
        .text("input")
        .text("filename")
        .setitem()
        .empty_dict()
        .text("__class__")
        .glob("sklearn.feature_extraction.text.CountVectorizer")
        .setitem()
        .tup()
        .build()
        .stop()
    )

    refused_everywhere(tmp_path, payload, match="special attribute __class__")


def test_a_vectorizer_given_its_mode_as_a_constructor_argument_is_refused(tmp_path: Path) -> None:
    payload = (
        PickleAsm(2)
        .call("sklearn.feature_extraction.text.CountVectorizer", text("filename"))
        .stop()
    )

    refused_everywhere(tmp_path, payload, match="constructor arguments")


def test_skops_memo_cannot_hide_a_file_mode(tmp_path: Path) -> None:
    # given a skops vectorizer whose 'input' node reuses the id of an earlier "filename" string:
    # skops resolves it to that earlier value, whatever the node itself says
    data = sio.dumps(CountVectorizer(decode_error="strict"))
    schema = schema_of(data)
    attrs = schema["content"]["content"]
    attrs["decode_error"] = {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps("filename"),
        "__id__": 424242,
    }
    attrs["input"] = {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps("content"),
        "__id__": 424242,
    }
    # decode_error is read first (the walk follows the file's key order, as skops does)
    schema["content"]["content"] = {"decode_error": attrs.pop("decode_error"), **attrs}
    path = tmp_path / "memo.skops"
    path.write_bytes(rezip(data, schema))

    refused(path, "skops", match="read its input from files")


# --- 4. process-wide state ---------------------------------------------------------------------

STATE_CHANGERS = [
    ("numpy.random.seed", lambda asm: asm.integer(7)),
    ("numpy.random.mtrand.seed", lambda asm: asm.integer(7)),
    ("numpy.random.set_state", text("MT19937")),
    ("sklearn.set_config", lambda asm: asm.true()),
    ("sklearn._config.set_config", lambda asm: asm.true()),
    ("numpy.set_printoptions", lambda asm: asm.integer(1)),
    ("numpy._core.arrayprint._set_printoptions", lambda asm: asm.integer(1)),
    ("numpy.seterr", text("raise")),
]


def _process_state() -> tuple[Any, ...]:
    key = np.random.get_state()[1].tobytes()  # type: ignore[index]
    return key, sklearn.get_config(), np.get_printoptions(), np.geterr()


@pytest.mark.parametrize(("function", "arg"), STATE_CHANGERS, ids=[f for f, _ in STATE_CHANGERS])
def test_calls_that_change_process_wide_state_are_refused(
    function: str, arg: Callable[[PickleAsm], Any], tmp_path: Path
) -> None:
    before = _process_state()
    payload = PickleAsm(2).call(function, arg).stop()

    refused_everywhere(tmp_path, payload, match=function.replace(".", r"\."))
    assert _process_state() == before


def test_thread_local_config_cannot_be_fetched_and_edited(tmp_path: Path) -> None:
    before = _process_state()
    payload = (
        PickleAsm(2)
        .call("sklearn._config._get_threadlocal_config")
        .text("assume_finite")
        .true()
        .setitem()
        .stop()
    )

    refused_everywhere(tmp_path, payload, match="_get_threadlocal_config")
    assert _process_state() == before


@pytest.mark.parametrize(
    "target", ["numpy.random.mtrand._rand", "sklearn.tree._classes.DecisionTreeClassifier"]
)
def test_state_cannot_be_set_on_a_global_object_or_class(target: str, tmp_path: Path) -> None:
    # given BUILD aimed at a module-level object (the global RNG) or a listed class itself
    payload = (
        PickleAsm(2)
        .glob(target)
        .mark()
        .none()
        .empty_dict()
        .text("predict")
        .glob("numpy.log1p")
        .setitem()
        .tup()
        .build()
        .stop()
    )

    predict = DecisionTreeClassifier.predict

    message = refused(*as_file(tmp_path, payload, "pickle"))

    assert "not on the allowlist" in message or "did not create" in message
    assert DecisionTreeClassifier.predict is predict


# --- 5. memory-unsafe views, dtypes and random states ------------------------------------------


def _raw_array(dtype: Any, data: bytes, shape: tuple[int, ...]) -> Forged:
    return Forged(np._core.numeric._frombuffer, (data, dtype, shape, "C"))  # type: ignore[attr-defined]


def _forged_dtype(descr: str, state: tuple[Any, ...]) -> Forged:
    return Forged(np.dtype, (descr, False, True), state)


BAD_DTYPES = {
    "field outside its items": _forged_dtype(
        "V16",
        (
            *(3, "|", None, ("a", "b")),
            {"a": (np.dtype("i8"), 0), "b": (np.dtype("f8"), 100_000)},
            *(16, 1, 16),
        ),
    ),
    "object field with cleared flags": _forged_dtype(
        "V16",
        (
            *(3, "|", None, ("a", "b")),
            {"a": (np.dtype("O"), 0), "b": (np.dtype("f8"), 8)},
            *(16, 1, 0),
        ),
    ),
    "object dtype with cleared flags": _forged_dtype("O8", (3, "|", None, None, None, -1, -1, 0)),
    "number claiming objects": _forged_dtype("f8", (3, "<", None, None, None, -1, -1, 63)),
    "size unlike its code": _forged_dtype("V8", (3, "|", None, None, None, 4096, 1, 0)),
}


@pytest.mark.parametrize("case", sorted(BAD_DTYPES))
def test_dtypes_that_would_read_foreign_memory_are_refused(case: str, tmp_path: Path) -> None:
    # given a dtype with forged state, used by an array built from raw bytes
    payload = pickle.dumps(_raw_array(BAD_DTYPES[case], b"\0" * 32, (2,)), protocol=2)

    refused_everywhere(tmp_path, payload, match="dtype|Python objects")


@pytest.mark.parametrize(
    "name", ["numpy.lib.stride_tricks.as_strided", "numpy.lib._stride_tricks_impl.as_strided"]
)
def test_strided_views_are_refused(name: str, tmp_path: Path) -> None:
    payload = (
        PickleAsm(2)
        .call(name, lambda asm: asm.none(), lambda asm: asm.integer(10**6).tup(1))
        .stop()
    )

    refused_everywhere(tmp_path, payload, match=name.replace(".", r"\."))


def test_an_array_interface_pointing_anywhere_is_refused(tmp_path: Path) -> None:
    interface = (
        PickleAsm(2)
        .glob("numpy.lib._stride_tricks_impl.DummyArray")
        .tup(0)
        .newobj()
        .empty_dict()
        .text("__array_interface__")
        .empty_dict()
        .text("data")
        .integer(4096)
        .false()
        .tup(2)
        .setitem()
        .setitem()
        .build()
    )

    refused_everywhere(tmp_path, interface.stop(), match="DummyArray")


def test_object_arrays_are_never_read_from_raw_bytes(tmp_path: Path) -> None:
    payload = pickle.dumps(_raw_array(np.dtype("O"), b"\x41" * 16, (2,)), protocol=2)

    refused_everywhere(tmp_path, payload, match="Python objects from raw bytes")


def _mt_state(pos: int) -> dict[str, Any]:
    return {"bit_generator": "MT19937", "state": {"key": np.zeros(624, np.uint32), "pos": pos}}


RANDOM_STATES = {
    "RandomState": Forged(
        np_random_pickle.__randomstate_ctor,
        (np.random.MT19937(),),
        {**_mt_state(10**8), "has_gauss": 0, "gauss": 0.0},
    ),
    "MT19937": Forged(
        np_random_pickle.__bit_generator_ctor, (np.random.MT19937,), (_mt_state(10**8), None)
    ),
    "Philox": Forged(
        np_random_pickle.__bit_generator_ctor,
        (np.random.Philox,),
        (
            {
                "bit_generator": "Philox",
                "state": {"counter": np.zeros(4, np.uint64), "key": np.zeros(2, np.uint64)},
                "buffer": np.zeros(4, np.uint64),
                "buffer_pos": 10**8,
                "has_uint32": 0,
                "uinteger": 0,
            },
            None,
        ),
    ),
    "SeedSequence": Forged(
        SeedSequence.__reduce__(SeedSequence(0))[0],
        (SeedSequence, SeedSequence(0).__reduce__()[1][1], None),
        (0, 0, np.zeros(4, np.uint32), 10**6, ()),
    ),
}


@pytest.mark.parametrize("case", sorted(RANDOM_STATES))
def test_random_states_with_positions_past_their_buffers_are_refused(
    case: str, tmp_path: Path
) -> None:
    # given a random state whose position points far past its key (MT19937 reads key[pos])
    payload = pickle.dumps(RANDOM_STATES[case], protocol=4)

    refused_everywhere(tmp_path, payload, match="position|pool size")


def test_skops_random_state_past_its_key_is_refused(tmp_path: Path) -> None:
    data = sio.dumps(np.random.RandomState(0))
    schema = schema_of(data)
    [pos] = nodes_where(
        schema, lambda node: isinstance(node.get("content"), dict) and "pos" in node["content"]
    )
    pos["content"]["pos"]["content"] = json.dumps(10**8)
    path = tmp_path / "rng.skops"
    path.write_bytes(rezip(data, schema))

    refused(path, "skops", match="position outside its key")


def _wrapper_header(asm: PickleAsm, dtype: str, count: int = 1) -> PickleAsm:
    """joblib's NumpyArrayWrapper for `count` items of `dtype`, up to its BUILD."""
    asm.glob("joblib.numpy_pickle.NumpyArrayWrapper").tup(0).newobj().empty_dict()
    asm.text("subclass").glob("numpy.ndarray").setitem()
    asm.text("shape").integer(count).tup(1).setitem()
    asm.text("order").text("C").setitem()
    asm.text("dtype")
    asm.call("numpy.dtype", text(dtype), lambda a: a.false(), lambda a: a.true())
    flags = 63 if dtype == "O8" else 0
    asm.mark().integer(3).text("|").none().none().none().integer(-1).integer(-1).integer(flags)
    return asm.tup().build().setitem()


def test_joblib_array_bytes_inside_a_frame_are_refused(tmp_path: Path) -> None:
    # given a wrapper whose BUILD sits inside a frame: joblib reads the array after the frame and
    # then runs the rest of the frame as opcodes, while a linear reader would skip them
    inner = _wrapper_header(PickleAsm(4), "u1").build().call("posix.system", text("true"))
    body = b"".join(inner.parts[1:])
    payload = b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body + b"\x00" + b"0."

    refused(*as_file(tmp_path, payload, "joblib"), match="frame|posix")


def test_a_joblib_wrapper_built_by_its_constructor_is_refused(tmp_path: Path) -> None:
    # given a wrapper made by calling its class, whose __init__ adds alignment padding the state
    # does not show: joblib would skip a padding header a reader of the state would not
    asm = PickleAsm(2).glob("joblib.numpy_pickle.NumpyArrayWrapper").mark()
    asm.glob("numpy.ndarray").integer(1).tup(1).text("C")
    asm.call("numpy.dtype", text("u1"), lambda a: a.false(), lambda a: a.true())
    payload = asm.tup().reduce().empty_dict().build().stop()

    refused(*as_file(tmp_path, payload, "joblib"), match="constructor arguments")


def test_opcodes_after_a_fake_wrapper_in_a_nested_object_array_are_walked(tmp_path: Path) -> None:
    # given an object array (a nested plain pickle, which joblib reads with no wrapper handling)
    # holding a wrapper followed by exactly as many "array bytes" as it declares, which are
    # really a call: a reader that skipped them as array data would never see it
    hidden = b"0" + b"".join(PickleAsm(2).call("posix.system", text("true")).parts[1:])
    nested = _wrapper_header(PickleAsm(2), "u1", count=len(hidden)).build().raw(hidden)
    nested.pop().none()
    outer = _wrapper_header(PickleAsm(2), "O8").build()
    payload = outer.stop()[:-1] + nested.stop() + b"."

    refused(*as_file(tmp_path, payload, "joblib"), match=r"posix\.system")


# --- 6. fitted trees with corrupt arrays (trees_check after load) ------------------------------


def _edit_tree(tree: Any, edit: Callable[[dict[str, Any]], None]) -> None:
    state = tree.__getstate__()
    state["nodes"] = state["nodes"].copy()
    state["values"] = state["values"].copy()
    edit(state)
    tree.__setstate__(state)


def _internal(state: dict[str, Any]) -> np.ndarray:
    return np.flatnonzero(state["nodes"]["left_child"] != -1)


def _back_edge(left: np.ndarray, right: np.ndarray, internal: np.ndarray) -> None:
    """Point a node two levels below a non-root node back up at it: a loop under the root."""
    for upper in np.flatnonzero(internal):
        if upper == 0:
            continue
        for lower in (int(left[upper]), int(right[upper])):
            if internal[lower]:
                left[lower] = upper
                return
    raise AssertionError("the fitted tree is too shallow to hold a loop")


def _cycle(state: dict[str, Any]) -> None:
    nodes = state["nodes"]
    _back_edge(nodes["left_child"], nodes["right_child"], nodes["left_child"] != -1)


TREE_CORRUPTIONS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "child out of range": (
        lambda s: s["nodes"]["right_child"].__setitem__(0, s["node_count"] + 7),
        "out of range",
    ),
    "negative child": (lambda s: s["nodes"]["left_child"].__setitem__(0, -5), "one child|range"),
    "cycle": (_cycle, "more than one node|cycle"),
    "self loop": (
        lambda s: s["nodes"]["left_child"].__setitem__(
            int(_internal(s)[-1]), int(_internal(s)[-1])
        ),
        "more than one node|cycle",
    ),
    "one child": (
        lambda s: s["nodes"]["left_child"].__setitem__(
            int(np.flatnonzero(s["nodes"]["left_child"] == -1)[0]), 1
        ),
        "one child",
    ),
    "feature past n_features": (
        lambda s: s["nodes"]["feature"].__setitem__(0, 9),
        "feature 9",
    ),
    "negative feature": (lambda s: s["nodes"]["feature"].__setitem__(0, -3), "feature -3"),
    "NaN threshold": (
        lambda s: s["nodes"]["threshold"].__setitem__(0, np.nan),
        "invalid threshold",
    ),
    "NaN value": (lambda s: s["values"].__setitem__((0, 0, 0), np.nan), "not finite"),
    "depth under-declared": (lambda s: s.__setitem__("max_depth", 1), "declares max_depth"),
}


def _save_and_load(model: Any, tmp_path: Path) -> Any:
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    # the static scan cannot see array values: it passes, which is why trees_check exists
    artifact_scan(path=path, fmt="joblib")
    return joblib.load(path)


@pytest.mark.parametrize("case", sorted(TREE_CORRUPTIONS))
def test_a_decision_tree_with_corrupt_arrays_is_refused_after_load(
    case: str, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    # given a real fitted tree whose arrays were edited, saved and loaded
    X, y = data
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y)
    edit, message = TREE_CORRUPTIONS[case]
    _edit_tree(model.tree_, edit)
    loaded = _save_and_load(model, tmp_path)

    # then the tree check refuses it before any prediction
    with pytest.raises(TreeError, match=message):
        trees_check(loaded)


@pytest.mark.parametrize("case", ["child out of range", "cycle", "feature past n_features"])
@pytest.mark.parametrize("family", ["forest", "gradient_boosting", "isolation_forest"])
def test_one_corrupt_tree_inside_an_ensemble_is_found(
    family: str, case: str, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    X, y = data
    if family == "forest":
        model = RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(X, y)
        tree = model.estimators_[2].tree_
    elif family == "gradient_boosting":
        model = GradientBoostingClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
        tree = model.estimators_[1, 0].tree_
    else:
        model = IsolationForest(n_estimators=3, random_state=0).fit(X)
        tree = model.estimators_[1].tree_
    edit, message = TREE_CORRUPTIONS[case]
    _edit_tree(tree, edit)

    with pytest.raises(TreeError, match=message):
        trees_check(_save_and_load(model, tmp_path))


def test_a_tree_reading_more_features_than_its_model_takes_is_refused(
    data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    X, y = data
    model = DecisionTreeClassifier(random_state=0).fit(X, y)
    model.n_features_in_ = 2

    with pytest.raises(TreeError, match="reads 4 features but its model takes 2"):
        trees_check(_save_and_load(model, tmp_path))


def test_a_corrupt_tree_in_a_skops_file_is_refused_after_load(
    data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    X, y = data
    model = make_pipeline(StandardScaler(), DecisionTreeClassifier(random_state=0)).fit(X, y)
    _edit_tree(model[-1].tree_, TREE_CORRUPTIONS["cycle"][0])
    path = tmp_path / "tree.skops"
    sio.dump(model, path)
    report = artifact_scan(path=path, fmt="skops")

    loaded = sio.load(path, trusted=report.untrusted_types)

    with pytest.raises(TreeError, match=r"more than one node|cycle"):
        trees_check(loaded)


def _edit_predictor(model: Any, edit: Callable[[np.ndarray], None]) -> None:
    predictor = model._predictors[0][0]
    nodes = predictor.nodes.copy()
    edit(nodes)
    predictor.nodes = nodes


HGB_CORRUPTIONS: dict[str, tuple[Callable[[np.ndarray], None], str]] = {
    "child out of range": (
        lambda n: n["right"].__setitem__(0, len(n) + 100),
        "out of range",
    ),
    "cycle": (
        lambda n: _back_edge(n["left"], n["right"], n["is_leaf"] == 0),
        "more than one node",
    ),
    "feature past n_features": (lambda n: n["feature_idx"].__setitem__(0, 40), "feature 40"),
    "NaN threshold": (lambda n: n["num_threshold"].__setitem__(0, np.nan), "invalid threshold"),
    "infinite leaf": (
        lambda n: n["value"].__setitem__(int(np.flatnonzero(n["is_leaf"])[0]), np.inf),
        "not finite",
    ),
    "categorical split on a numeric feature": (
        lambda n: n["is_categorical"].__setitem__(0, 1),
        "categorical|category set",
    ),
}


@pytest.mark.parametrize("case", sorted(HGB_CORRUPTIONS))
def test_histogram_boosting_predictors_with_corrupt_nodes_are_refused(
    case: str, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    X, y = data
    model = HistGradientBoostingClassifier(max_iter=3, min_samples_leaf=2, random_state=0)
    model.fit(X, y)
    edit, message = HGB_CORRUPTIONS[case]
    _edit_predictor(model, edit)

    with pytest.raises(TreeError, match=message):
        trees_check(_save_and_load(model, tmp_path))


def test_a_categorical_split_naming_a_missing_category_set_is_refused(
    data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    # given boosting with a categorical feature, one categorical node pointing past its bitsets
    X, y = data
    X = np.column_stack([X, np.arange(len(X)) % 5])
    y = (X[:, 4] % 2 == 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=3, categorical_features=[4]).fit(X, y)
    predictor = next(p[0] for p in model._predictors if p[0].nodes["is_categorical"].any())
    nodes = predictor.nodes.copy()
    nodes["bitset_idx"][np.flatnonzero(nodes["is_categorical"])[0]] = 10**6
    predictor.nodes = nodes

    with pytest.raises(TreeError, match="missing category set"):
        trees_check(_save_and_load(model, tmp_path))


def test_a_neighbour_tree_indexing_outside_its_data_is_refused(
    data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    X, y = data
    model = KNeighborsClassifier(algorithm="kd_tree").fit(X, y)
    state = list(model._tree.__getstate__())
    state[1] = state[1].copy()
    state[1][0] = 10**6
    model._tree.__setstate__(tuple(state))

    with pytest.raises(TreeError, match="sample index points outside its data"):
        trees_check(_save_and_load(model, tmp_path))


def test_splines_svms_and_sparse_matrices_with_inconsistent_arrays_are_refused(
    data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    X, y = data
    spline = SplineTransformer().fit(X)
    spline.bsplines_[0].c = spline.bsplines_[0].c[:1]
    svc = SVC().fit(X, y)
    svc._n_support = svc._n_support + 5
    projection = SparseRandomProjection(n_components=3, random_state=0).fit(X)
    projection.components_.indices[0] = 10**6

    for model, message in (
        (spline, "fewer coefficients"),
        (svc, "support vector counts"),
        (projection, "sparse indices"),
    ):
        with pytest.raises(TreeError, match=message):
            trees_check(_save_and_load(model, tmp_path))


# --- 7. predict-time backdoors -------------------------------------------------------------------

BACKDOORS = {
    "os.system": lambda: FunctionTransformer(func=os.system),
    "numpy.save": lambda: FunctionTransformer(func=np.save, kw_args={"file": "/tmp/x"}),
    "piecewise dispatch": lambda: FunctionTransformer(
        func=np.piecewise, kw_args={"condlist": [True], "funclist": [os.system]}
    ),
    "a class as the function": lambda: FunctionTransformer(func=np.ndarray),
    "a partial of os.system": lambda: FunctionTransformer(func=functools.partial(os.system)),
    "a rebuild helper as the function": lambda: FunctionTransformer(func=copyreg._reconstructor),  # type: ignore[attr-defined]
    "target transform": lambda: TransformedTargetRegressor(Ridge(), func=np.save),
    "neighbour weights": lambda: KNeighborsClassifier(weights=np.save),
    "svm kernel": lambda: SVC(kernel=_get_response_values),
}


@pytest.mark.parametrize("case", sorted(BACKDOORS))
def test_steps_that_would_call_unlisted_functions_at_predict_time_are_refused(
    case: str, tmp_path: Path
) -> None:
    # given a pipeline with a step holding a callable no model needs
    pipeline = make_pipeline(StandardScaler(), BACKDOORS[case]())

    # then pickle and joblib forms are refused
    for protocol in (2, 5):
        path = tmp_path / f"backdoor-{protocol}.pkl"
        path.write_bytes(pickle.dumps(pipeline, protocol=protocol))
        refused(path, "pickle")
    path = tmp_path / "backdoor.joblib"
    joblib.dump(pipeline, path, compress=("zlib", 1))
    refused(path, "joblib")


@pytest.mark.parametrize("case", ["os.system", "numpy.save", "a class as the function"])
def test_skops_steps_with_unlisted_functions_are_refused(case: str, tmp_path: Path) -> None:
    path = tmp_path / "backdoor.skops"
    sio.dump(make_pipeline(BACKDOORS[case]()), path)

    refused(path, "skops")


@pytest.mark.parametrize("fmt", ["pickle", "joblib", "skops"])
def test_a_function_transformer_with_a_listed_function_passes(
    fmt: str, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    # given the common, harmless case: log1p before a linear model
    X, y = data
    model = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()).fit(np.abs(X), y)
    path = tmp_path / f"log1p.{fmt}"
    if fmt == "skops":
        sio.dump(model, path)
    elif fmt == "joblib":
        joblib.dump(model, path)
    else:
        path.write_bytes(pickle.dumps(model, protocol=5))

    # then it passes and names the function
    assert "numpy.log1p" in artifact_scan(path=path, fmt=fmt).globals


# --- 8. attacks on the scanner itself ----------------------------------------------------------


def _unimported_test_module() -> str:
    """A real module of this test suite that nothing has imported (importing it runs code)."""
    root = Path(__file__).resolve().parents[1]
    for path in sorted(root.rglob("test_*.py")):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        if name not in sys.modules:
            return name
    return "this"  # the standard library's module that prints on import


@pytest.mark.parametrize("how", ["GLOBAL", "STACK_GLOBAL", "STACK_GLOBAL from memo"])
@pytest.mark.parametrize(
    "module", ["tests.registry.not_a_module_xyz", "this", "antigravity", "unimported test module"]
)
def test_modules_the_file_names_are_never_imported(module: str, how: str, tmp_path: Path) -> None:
    # given a pickle naming a module (fake, or real and with side effects on import)
    if module == "unimported test module":
        module = _unimported_test_module()
    assert module not in sys.modules
    asm = PickleAsm(4)
    if how == "GLOBAL":
        asm.glob(f"{module}.anything")
    elif how == "STACK_GLOBAL":
        asm.stack_glob(f"{module}.anything")
    else:
        asm.text(module).put(7).pop().get(7).text("anything").raw(b"\x93")
    payload = asm.mark().tup().reduce().stop()

    # then it is refused by name, and the module is still not imported
    refused_everywhere(tmp_path, payload, match=module.replace(".", r"\."))
    assert module not in sys.modules


@pytest.mark.parametrize(
    "shape",
    [(2**62,), (2**31, 2**31, 2**31), (10**6,) * 60, (2**4000,)],
    ids=["huge", "product", "many dims", "giant int"],
)
def test_declared_shapes_are_bounded_before_they_are_multiplied(
    shape: tuple[int, ...], tmp_path: Path
) -> None:
    # given a joblib wrapper and a numpy array state declaring an absurd shape
    asm = PickleAsm(2).glob("joblib.numpy_pickle.NumpyArrayWrapper").tup(0).newobj().empty_dict()
    asm.text("subclass").glob("numpy.ndarray").setitem().text("order").text("C").setitem()
    asm.text("shape").mark()
    for n in shape:
        asm.raw(b"\x8b" + struct.pack("<i", (n.bit_length() + 8) // 8))
        asm.raw(n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True))
    asm.tup().setitem().text("dtype")
    asm.call("numpy.dtype", text("f8"), lambda a: a.false(), lambda a: a.true())
    payload = asm.setitem().build().stop()
    limits = ScanLimits(max_long_bytes=1024)

    # then each is refused at once
    started = time.monotonic()
    path, fmt = as_file(tmp_path, payload, "joblib")
    refused(path, fmt, match="elements|integer longer", limits=limits)
    refused(path, fmt, match="elements|integer longer")
    assert time.monotonic() - started < 1


def test_a_giant_integer_is_refused_before_it_is_converted(tmp_path: Path) -> None:
    payload = b"\x80\x04\x8b" + struct.pack("<i", 10**6) + b"\x01" * 10**6 + b"."

    started = time.monotonic()
    refused_everywhere(tmp_path, payload, match="integer longer than 64 bytes")
    assert time.monotonic() - started < 5


def test_an_opcode_bomb_is_refused_in_bounded_time(tmp_path: Path) -> None:
    # given 600 bytes of bz2 that expand to ten million opcodes
    stream = b"\x80\x04" + b"N0" * 5_000_000 + b"N."
    path = tmp_path / "bomb.joblib"
    path.write_bytes(compressed(stream, "bz2"))
    assert path.stat().st_size < 600

    # when scanned with an opcode budget, or with a time budget, it is refused promptly
    started = time.monotonic()
    refused(path, "joblib", match="more than 1000000 opcodes", limits=ScanLimits(max_opcodes=10**6))
    refused(path, "joblib", match="longer than 0.5 seconds", limits=ScanLimits(max_seconds=0.5))
    assert time.monotonic() - started < 10


def test_memo_and_stack_bombs_are_refused(tmp_path: Path) -> None:
    # a memo index of four billion (the C unpickler sizes its memo by it), then deep marks
    memo = b"\x80\x04N" + b"r" + struct.pack("<I", 0xFFFFFFF0) + b"."
    marks = b"\x80\x04" + b"(" * 300_000 + b"N."

    refused_everywhere(tmp_path, memo, match="memo entries")
    refused_everywhere(tmp_path, marks, match="stack grows")


@pytest.mark.parametrize("depth", [300, 5000])
def test_deeply_nested_skops_schema_is_refused(depth: int, tmp_path: Path) -> None:
    # given a schema nesting lists thousands deep (written as text: json.dumps would recurse)
    kind = '"__module__": "builtins", "__class__": '
    opening = "{" + kind + '"list", "__loader__": "ListNode", "content": ['
    leaf = "{" + kind + '"str", "__loader__": "JsonNode", "content": "1"}'
    schema = opening * depth + leaf + "]}" * depth
    path = tmp_path / "deep.skops"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", schema)

    refused(path, "skops", match="too deeply|not a readable")


@pytest.mark.parametrize("opcode", [b"P0\n", b"Q", b"\x82\x01", b"i__main__\nX\n", b"o", b"\x97"])
def test_opcodes_no_saved_model_uses_are_refused(opcode: bytes, tmp_path: Path) -> None:
    payload = b"\x80\x04N(" + opcode + b"."

    refused_everywhere(tmp_path, payload, match="opcode")
