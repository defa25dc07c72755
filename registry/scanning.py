"""Static scan of an uploaded artifact: decides, without deserialising it, whether it may be loaded.

A pickle is a program for a small stack machine; it can only run code by importing a global
(``GLOBAL``, ``STACK_GLOBAL``) and calling it (``REDUCE``, ``NEWOBJ``) or by handing state to a
class's ``__setstate__`` (``BUILD``). The scan decodes every opcode itself, keeps a symbolic stack
and memo, and checks each global by exact name against ``registry/allowlist.json``:

- ``classes``: what a fitted model is made of. A pickle may create them and set their state.
- ``reconstructors``: the few other callables a pickle may call, each with a rule on its arguments
  enforced here (``_RECONSTRUCTOR_RULES``).
- ``functions``: numeric functions a pickle may hold as values (``FunctionTransformer(np.log1p)``),
  never call.

Nothing named by the file is imported or looked up: a name is a string compared with a list. State
handed to classes with a dangerous mode is checked too (text vectorizers must read ``content``,
``FunctionTransformer`` holds listed functions, numpy dtypes and random states must be consistent),
and every array shape is bounded before it is multiplied. Any surprise refuses the artifact; there
is no "probably fine". Each refusal starts with "Refused:" and says what was found.

joblib files may be compressed (zlib, gzip, bz2, lzma/xz, lz4) and store each numpy array as a
`NumpyArrayWrapper` followed by the raw bytes (or, for object arrays, a nested pickle). The scan
undoes the compression into a capped temporary file and steps over (or walks) each payload exactly
where joblib would read it.

skops files are zip archives; after the zip-bomb checks their ``schema.json`` is walked here (the
same lists and state rules apply to every type it names, including those skops trusts by itself),
and the passing names are reported as the types the loader may trust.

This module must not import Django: it also runs inside the sandbox. Bounds come in a
`ScanLimits`; `registry.allowlist` regenerates the allowlist (``manage.py allowlist_build``).
"""

from __future__ import annotations

import _compat_pickle
import ast
import bz2
import gzip
import io
import json
import lzma
import math
import mmap
import pickletools
import re
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

CHUNK = 1024 * 1024
ALLOWLIST_PATH = Path(__file__).with_name("allowlist.json")

ZIP_MAGIC = b"PK\x03\x04"
PICKLE_MAGIC = b"\x80"
# joblib's compressor prefixes (joblib/compressor.py); "ZF" is joblib < 0.9.3, no longer readable.
COMPRESSION_MAGIC = {
    b"\x78": "zlib",
    b"\x1f\x8b": "gzip",
    b"BZ": "bz2",
    b"\xfd\x37\x7a\x58\x5a": "xz",
    b"\x5d\x00": "lzma",
    b"\x04\x22\x4d\x18": "lz4",
}
JOBLIB_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"


class ScanError(Exception):
    """The artifact is refused; the message says why in words a person understands."""


@dataclass(frozen=True)
class ScanLimits:
    """Bounds on the work a scan does; past any of them the artifact is refused."""

    max_opcodes: int = 20_000_000
    max_memo: int = 5_000_000
    max_stack: int = 100_000
    # LONG1/LONG4 integers: 64 bytes is a 512-bit number; random-state integers need 17.
    max_long_bytes: int = 64
    max_array_elements: int = 500_000_000
    max_total_elements: int = 2_000_000_000
    max_expanded_bytes: int = 4 * 1024**3
    max_seconds: float = 60.0


@dataclass
class ScanReport:
    format: str
    globals: set[str] = field(default_factory=set)
    untrusted_types: list[str] = field(default_factory=list)
    container: str = "none"
    arrays: int = 0
    opcodes: int = 0
    expanded_bytes: int = 0


# --- the allowlist -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowlist:
    """The exact names an artifact may use, read from ``registry/allowlist.json``."""

    classes: frozenset[str]
    functions: frozenset[str]
    reconstructors: dict[str, str]  # name -> argument rule (a key of _RECONSTRUCTOR_RULES)
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Allowlist:
        reconstructors = {name: str(spec["rule"]) for name, spec in data["reconstructors"].items()}
        # A rule belongs to the callable it was written for: an edited file cannot pair, say,
        # builtins.eval with the rule for _codecs.encode.
        mismatched = sorted(
            name for name, rule in reconstructors.items() if reconstructor_rule_for(name) != rule
        )
        if mismatched:
            raise ValueError(f"allowlist gives these names a rule not theirs: {mismatched}")
        return cls(
            classes=frozenset(data["classes"]),
            functions=frozenset(data["functions"]),
            reconstructors=reconstructors,
            metadata=dict(data.get("generated_with", {})),
        )

    def kind(self, name: str) -> str | None:
        if name in self.classes:
            return "class"
        if name in self.reconstructors:
            return "reconstructor"
        if name in self.functions:
            return "function"
        return None


@lru_cache(maxsize=1)
def allowlist_default() -> Allowlist:
    """The checked-in allowlist (read once per process)."""
    return Allowlist.from_data(json.loads(ALLOWLIST_PATH.read_text()))


def reconstructor_rule_for(name: str) -> str | None:
    """The argument rule this scanner applies when a pickle calls `name`, if it has one."""
    if name in _RECONSTRUCTOR_NAMES:
        return _RECONSTRUCTOR_NAMES[name]
    module, _, attr = name.rpartition(".")
    # Cython's generated unpicklers: __pyx_unpickle_X(X, checksum, state) in X's own module.
    if attr.startswith("__pyx_unpickle_") and module.split(".")[0] in ("sklearn", "numpy", "scipy"):
        return "cython_unpickle"
    # scikit-learn's BinaryTree / DistanceMetric pickles: newObj(cls) == cls.__new__(cls).
    if attr == "newObj" and module.startswith("sklearn."):
        return "new_object"
    return None


_RECONSTRUCTOR_NAMES = {
    "copyreg._reconstructor": "copyreg_reconstructor",
    "copyreg.__newobj__": "copyreg_newobj",
    "_codecs.encode": "latin1_bytes",
    "numpy.dtype": "dtype",
    "numpy._core.multiarray._reconstruct": "array_reconstruct",
    "numpy.core.multiarray._reconstruct": "array_reconstruct",
    "numpy._core.numeric._frombuffer": "array_frombuffer",
    "numpy.core.numeric._frombuffer": "array_frombuffer",
    "numpy._core.multiarray.scalar": "scalar",
    "numpy.core.multiarray.scalar": "scalar",
    "numpy.ma.core._mareconstruct": "masked_reconstruct",
    "numpy.core._ufunc_reconstruct": "ufunc_reconstruct",
    "numpy._core._ufunc_reconstruct": "ufunc_reconstruct",
    "numpy.random._pickle.__bit_generator_ctor": "bit_generator",
    "numpy.random._pickle.__generator_ctor": "random_generator",
    "numpy.random._pickle.__randomstate_ctor": "random_state",
}

BIT_GENERATORS = {
    "MT19937": "numpy.random._mt19937.MT19937",
    "PCG64": "numpy.random._pcg64.PCG64",
    "PCG64DXSM": "numpy.random._pcg64.PCG64DXSM",
    "Philox": "numpy.random._philox.Philox",
    "SFC64": "numpy.random._sfc64.SFC64",
}
RANDOM_STATE = "numpy.random.mtrand.RandomState"
GENERATOR = "numpy.random._generator.Generator"
SEED_SEQUENCE = "numpy.random.bit_generator.SeedSequence"
# A partial may wrap only a listed function (see _state_partial).
PARTIAL = "functools.partial"
# Arrays come only through numpy's reconstructors, whose arguments are checked; calling these
# classes directly would let a file choose shapes, strides and buffers.
ARRAY_CLASSES = frozenset(
    {"numpy.ndarray", "numpy.matrix", "numpy.ma.MaskedArray", "numpy.ma.core.MaskedArray"}
)
MASKED_ARRAY_CLASSES = frozenset({"numpy.ma.MaskedArray", "numpy.ma.core.MaskedArray"})
# Containers that receive SETITEM(S): the unpickler calls their __setitem__.
MAPPING_CLASSES = frozenset(
    {
        "builtins.dict",
        "collections.OrderedDict",
        "collections.defaultdict",
        "sklearn.utils._bunch.Bunch",
    }
)
# What a defaultdict may call for a missing key.
DEFAULT_FACTORIES = frozenset(
    {"builtins.list", "builtins.dict", "builtins.set", "builtins.int", "builtins.float"}
)
TEXT_VECTORIZERS = frozenset(
    {
        "sklearn.feature_extraction.text.CountVectorizer",
        "sklearn.feature_extraction.text.TfidfVectorizer",
        "sklearn.feature_extraction.text.HashingVectorizer",
    }
)
# Parameters called on every prediction; they may hold only a listed function or None (or, for
# the text vectorizers, one of their named modes).
CALLABLE_PARAMS: dict[str, tuple[str, ...]] = {
    "sklearn.preprocessing._function_transformer.FunctionTransformer": ("func", "inverse_func"),
    "sklearn.compose._target.TransformedTargetRegressor": ("func", "inverse_func"),
    **{
        name: ("preprocessor", "tokenizer", "analyzer", "strip_accents")
        for name in TEXT_VECTORIZERS
    },
}


# --- symbolic values -----------------------------------------------------------------------------


@dataclass(eq=False)
class _Global:
    name: str
    kind: str  # "class" | "function" | "reconstructor" | "any" (while generating the allowlist)


@dataclass(eq=False)
class _Obj:
    """Something the loader would create: an instance of `cls` (None: a plain value)."""

    cls: str | None
    args: tuple[Any, ...] = ()
    state: Any = None
    shape: tuple[int, ...] | None = None  # arrays
    dtype: _Obj | None = None  # arrays
    descr: str | None = None  # dtypes: the type code numpy.dtype() was called with
    attrs: dict[str, Any] = field(default_factory=dict)  # merged BUILD state of plain objects


@dataclass(eq=False)
class _Blob:
    """A str or bytes payload too long to keep: only its kind and length are known."""

    kind: str
    length: int


@dataclass(eq=False)
class _SetVal:
    items: list[Any] = field(default_factory=list)


_INLINE_BYTES = 1 << 16


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ScanError(message)


def _text(value: Any) -> bool:
    return type(value) is str


def _plain_int(value: Any) -> bool:
    return type(value) is int


# --- dtypes and shapes ---------------------------------------------------------------------------

# The type codes numpy.dtype.__reduce__ emits for built-in types (structured dtypes are 'V<n>').
_DESCR = re.compile(r"(b1|[iu][1248]|f(?:2|4|8|16)|c(?:8|16|32)|O[48]|[SUV][0-9]{1,9}|[Mm]8)")
# dtype flags numpy computes for object-holding types; a file may not claim them for numbers
# (joblib and numpy decide from them whether raw bytes are read as object pointers).
_OBJECT_FLAGS = 0x01 | 0x02 | 0x04 | 0x20 | 0x40
_CANONICAL_OBJECT_FLAGS = 63
_NUMPY_SCALAR_NAMES = frozenset(
    {
        "bool",
        "bool_",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "intc",
        "uintc",
        "intp",
        "uintp",
        "longlong",
        "ulonglong",
        "float16",
        "float32",
        "float64",
        "longdouble",
        "complex64",
        "complex128",
        "clongdouble",
        "str_",
        "bytes_",
        "datetime64",
        "timedelta64",
        "object_",
        # abstract types, held as values: make_column_selector(dtype_include=np.number)
        "generic",
        "number",
        "integer",
        "signedinteger",
        "unsignedinteger",
        "inexact",
        "floating",
        "complexfloating",
        "character",
        "flexible",
    }
)


def _descr_itemsize(descr: str) -> int:
    kind, digits = descr[0], descr[1:]
    size = int(digits)
    return size * 4 if kind == "U" else size


def _dtype_info(value: Any) -> tuple[bool, int]:
    """(holds objects, item size) of a checked dtype; refuses anything else."""
    _expect(
        isinstance(value, _Obj) and value.cls == "numpy.dtype" and value.descr is not None,
        "Refused: an array's dtype is not a numpy dtype.",
    )
    assert isinstance(value, _Obj)
    assert value.descr is not None
    if value.descr.startswith("O"):
        return True, 8
    return False, _descr_itemsize(value.descr)


class _Budget:
    """Counters shared by every pickle in one artifact (joblib nests them)."""

    def __init__(self, limits: ScanLimits, report: ScanReport) -> None:
        self.limits = limits
        self.report = report
        self.deadline = time.monotonic() + limits.max_seconds
        self.elements = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise ScanError(
                f"Refused: the scan took longer than {self.limits.max_seconds:g} seconds "
                "(the file is larger or more convoluted than any model needs)."
            )

    def shape(self, value: Any) -> tuple[int, ...]:
        """A declared array shape, each dimension checked before it is multiplied."""
        _expect(
            type(value) is tuple and len(value) <= 64,
            "Refused: an array declares a malformed shape.",
        )
        limit = self.limits.max_array_elements
        count = 1
        for n in value:
            _expect(_plain_int(n) and n >= 0, "Refused: an array declares a malformed shape.")
            _expect(
                n <= limit,
                f"Refused: an array declares {n} elements in one dimension, past the limit of "
                f"{limit}.",
            )
            count *= n
            _expect(
                count <= limit,
                f"Refused: an array declares more than {limit} elements.",
            )
        return tuple(value)

    def count(self, shape: tuple[int, ...]) -> int:
        total = math.prod(shape)
        self.elements += total
        self.report.arrays += 1
        _expect(
            self.elements <= self.limits.max_total_elements,
            f"Refused: the arrays declare more than {self.limits.max_total_elements} elements "
            "in total.",
        )
        return total


# --- policy: the allowlist, or (for the generator) a record of what is used ---------------------


class _Policy:
    def __init__(self, allowlist: Allowlist | None) -> None:
        self.allowlist = allowlist
        self.uses: dict[str, set[str]] = {}

    def lookup(self, name: str) -> _Global:
        if self.allowlist is None:
            self.uses.setdefault(name, set())
            return _Global(name, "any")
        kind = self.allowlist.kind(name)
        if kind is None:
            raise ScanError(f"Refused: it imports {name}, which is not on the allowlist.")
        return _Global(name, kind)

    def rule(self, name: str) -> str | None:
        if self.allowlist is None:
            return reconstructor_rule_for(name)
        return self.allowlist.reconstructors.get(name)

    def note(self, glob: _Global, use: str) -> None:
        if self.allowlist is None:
            self.uses.setdefault(glob.name, set()).add(use)

    def require_class(self, value: Any, what: str) -> str:
        _expect(
            isinstance(value, _Global) and value.kind in ("class", "any"),
            f"Refused: {what} is not an allowed class.",
        )
        assert isinstance(value, _Global)
        self.note(value, "new")
        return value.name

    def require_function(self, name: str, what: str) -> None:
        if self.allowlist is None:
            self.uses.setdefault(name, set()).add("value")
            return
        _expect(
            name in self.allowlist.functions,
            f"Refused: {what} names {name}, which is not an allowed function.",
        )


# --- rules ---------------------------------------------------------------------------------------


class _Rules:
    """Argument rules for calls and state rules for BUILD, shared by the pickle and skops walks."""

    def __init__(self, policy: _Policy, budget: _Budget) -> None:
        self.policy = policy
        self.budget = budget
        # Containers already searched for misplaced callables; kept alive so ids stay unique.
        self.checked: dict[int, Any] = {}

    # values -----------------------------------------------------------------------------------

    def values(self, value: Any) -> None:
        """Refuse reconstructors held as values anywhere inside `value` (they are call gadgets)."""
        pending = [value]
        while pending:
            item = pending.pop()
            if isinstance(item, _Global):
                if item.kind == "reconstructor":
                    raise ScanError(
                        f"Refused: it holds {item.name} as a value; that helper may only rebuild "
                        "objects while loading."
                    )
                self.policy.note(item, "value")
                continue
            if not isinstance(item, (tuple, list, dict, _SetVal)) or id(item) in self.checked:
                continue
            self.checked[id(item)] = item
            if isinstance(item, dict):
                pending.extend(item.keys())
                pending.extend(item.values())
            elif isinstance(item, _SetVal):
                pending.extend(item.items)
            else:
                pending.extend(item)

    # calls ------------------------------------------------------------------------------------

    def call(self, func: Any, args: Any) -> _Obj | _Global:
        """What REDUCE(func, args) would produce, if the call is allowed."""
        _expect(
            isinstance(func, _Global),
            "Refused: the pickle calls something that is not an allowed class or function.",
        )
        assert isinstance(func, _Global)
        _expect(type(args) is tuple, "Refused: the pickle calls a function without arguments.")
        rule = self.policy.rule(func.name)
        if rule is not None and func.kind in ("reconstructor", "any"):
            self.policy.note(func, "call")
            return _RECONSTRUCTOR_RULES[rule](self, func.name, args)
        if func.kind == "function":
            raise ScanError(
                f"Refused: it calls {func.name}; an artifact may hold that function as a value "
                "but not call it while loading."
            )
        _expect(
            func.kind in ("class", "any"),
            f"Refused: it calls {func.name}, which has no argument rule.",
        )
        self.policy.note(func, "call")
        return self.construct(func.name, args)

    def construct(self, cls: str, args: tuple[Any, ...]) -> Any:
        """cls(*args) or cls.__new__(cls, *args) for a listed class."""
        _expect(
            cls not in ARRAY_CLASSES,
            f"Refused: it builds a {cls} directly instead of through numpy's reconstructors.",
        )
        module, _, attr = cls.rpartition(".")
        _expect(
            cls not in ("builtins.object", "builtins.type")
            and not (module == "numpy" and attr in _NUMPY_SCALAR_NAMES),
            f"Refused: it calls {cls} directly.",
        )
        self.values(args)
        if cls in ("builtins.bytes", "builtins.bytearray"):
            ok = (
                args == ()
                or (len(args) == 1 and isinstance(args[0], (bytes, _Blob)))
                or (
                    len(args) == 2
                    and (_text(args[0]) or isinstance(args[0], _Blob))
                    and args[1] in ("latin1", "latin-1")
                )
            )
            _expect(ok, f"Refused: it calls {cls} with arguments a saved model never uses.")
            if cls == "builtins.bytes" and (args == () or isinstance(args[0], bytes)):
                return args[0] if args else b""
            return _Blob(cls.removeprefix("builtins."), 0)
        if cls in ("builtins.set", "builtins.frozenset"):
            _expect(
                args == () or (len(args) == 1 and isinstance(args[0], (list, tuple, _SetVal))),
                f"Refused: it calls {cls} with arguments a saved model never uses.",
            )
            return _Obj(cls)
        if cls == "collections.defaultdict":
            _expect(
                args == ()
                or (
                    len(args) == 1
                    and (
                        args[0] is None
                        or (isinstance(args[0], _Global) and args[0].name in DEFAULT_FACTORIES)
                    )
                ),
                "Refused: a defaultdict would call something other than a plain container.",
            )
            return _Obj(cls)
        if cls == "sklearn.tree._tree.Tree":
            ok = (
                len(args) == 3
                and _plain_int(args[0])
                and 0 <= args[0] <= self.budget.limits.max_array_elements
                and isinstance(args[1], _Obj)
                and args[1].cls == "numpy.ndarray"
                and _plain_int(args[2])
                and 1 <= args[2] <= 1_000_000
            )
            _expect(ok, "Refused: a decision tree is created with impossible sizes.")
            return _Obj(cls, args)
        if cls == PARTIAL:
            _expect(len(args) == 1, "Refused: a functools.partial is created without a function.")
            self.function_value(args[0], "a functools.partial")
            return _Obj(cls, args)
        if cls in CALLABLE_PARAMS or cls in TEXT_VECTORIZERS or cls == JOBLIB_WRAPPER:
            # Their rules read the state a BUILD gives them; constructor arguments would set
            # the same attributes out of sight (and a wrapper's __init__ adds alignment padding).
            _expect(args == (), f"Refused: {cls} is created with constructor arguments.")
        return _Obj(cls, args)

    def newobj(self, cls_value: Any, args: Any, kwargs: Any = None) -> _Obj:
        _expect(
            isinstance(cls_value, _Global),
            "Refused: the pickle creates an object of something that is not a class.",
        )
        cls = self.policy.require_class(cls_value, f"the class created ({_name(cls_value)})")
        _expect(type(args) is tuple, "Refused: malformed pickle (object arguments).")
        _expect(kwargs is None or kwargs == {}, "Refused: an object is created with keywords.")
        return self.construct(cls, args)

    # state ------------------------------------------------------------------------------------

    def build(self, target: Any, state: Any) -> None:
        """BUILD: the loader hands `state` to target.__setstate__ (or its __dict__)."""
        _expect(
            isinstance(target, _Obj) and target.cls is not None,
            "Refused: the pickle sets state on something it did not create.",
        )
        assert isinstance(target, _Obj)
        assert target.cls is not None
        self.values(state)
        cls = target.cls
        rule = _STATE_RULES.get(cls)
        if rule is not None:
            rule(self, target, state)
        elif cls in MASKED_ARRAY_CLASSES:
            _state_masked(self, target, state)
        elif cls in BIT_GENERATORS.values():
            _state_bit_generator(self, target, state)
        else:
            self.attributes(target, state)
        target.state = state

    def attributes(self, target: _Obj, state: Any) -> None:
        """A plain object's attributes: text names, no dunders, parameter rules."""
        if isinstance(state, dict):
            parts: list[Any] = [state]
        elif type(state) is tuple and len(state) == 2:
            parts = [state[0], state[1]]  # (state, slotstate) for classes without __setstate__
        elif state is None:
            return
        else:
            # Cython classes restore C fields from a tuple; nothing here names an attribute.
            _expect(
                type(state) is tuple and target.cls not in CALLABLE_PARAMS,
                f"Refused: {target.cls} is given state of an unexpected form.",
            )
            return
        for part in parts:
            if part is None:
                continue
            _expect(isinstance(part, dict), f"Refused: {target.cls} is given malformed state.")
            for key, value in part.items():
                _expect(
                    _text(key),
                    f"Refused: {target.cls} is given an attribute named by something other "
                    "than text.",
                )
                _expect(
                    not (key.startswith("__") and key.endswith("__")),
                    f"Refused: the pickle sets the special attribute {key} of {target.cls}.",
                )
                target.attrs[key] = value
        self.parameters(target.cls, target.attrs)

    def function_value(self, value: Any, what: str) -> None:
        """`value` is a listed function (never a class, helper or other callable object)."""
        _expect(
            isinstance(value, _Global) and value.kind in ("function", "any"),
            f"Refused: {what} must be an allowed function or None.",
        )
        assert isinstance(value, _Global)
        self.policy.require_function(value.name, what)

    def parameters(self, cls: str | None, attrs: dict[str, Any]) -> None:
        for param in CALLABLE_PARAMS.get(cls or "", ()):
            value = attrs.get(param)
            if value is None:
                continue
            if cls in TEXT_VECTORIZERS and _text(value):
                continue  # analyzer="word", strip_accents="unicode": named modes
            if isinstance(value, _Obj) and value.cls == PARTIAL:
                # HistGradientBoosting's own column transformer holds
                # partial(check_array, dtype=...); the partial's function was checked.
                continue
            self.function_value(value, f"{_short(cls)}.{param}")
        if cls in TEXT_VECTORIZERS and "input" in attrs:
            _expect(
                attrs["input"] == "content",
                f"Refused: {_short(cls)} is set to read its input from files "
                f"(input={_show(attrs['input'])}); only input='content' is accepted.",
            )


def _name(value: Any) -> str:
    return value.name if isinstance(value, _Global) else type(value).__name__


def _short(cls: str | None) -> str:
    return (cls or "?").rpartition(".")[2]


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, (str, int, float, type(None))) else "an object"


# Reconstructors ----------------------------------------------------------------------------------


def _rule_copyreg_reconstructor(rules: _Rules, name: str, args: tuple[Any, ...]) -> _Obj:
    # copyreg._reconstructor(cls, base, state) calls base.__new__(cls, state) and base.__init__
    # unless base is object: only the object form is a plain instance creation.
    _expect(
        len(args) == 3
        and isinstance(args[1], _Global)
        and args[1].name == "builtins.object"
        and args[2] is None,
        f"Refused: it calls {name} with a base other than object.",
    )
    cls = rules.policy.require_class(args[0], f"the class {name} creates")
    return rules.construct(cls, ())


def _rule_copyreg_newobj(rules: _Rules, name: str, args: tuple[Any, ...]) -> _Obj:
    _expect(len(args) >= 1, f"Refused: it calls {name} without a class.")
    return rules.newobj(args[0], args[1:])


def _rule_latin1_bytes(rules: _Rules, name: str, args: tuple[Any, ...]) -> bytes | _Blob:
    # Protocol 2 writes bytes as _codecs.encode(<latin-1 text>, "latin1").
    _expect(
        len(args) == 2
        and (_text(args[0]) or (isinstance(args[0], _Blob) and args[0].kind == "str"))
        and args[1] in ("latin1", "latin-1"),
        f"Refused: it calls {name} with arguments other than text and 'latin1'.",
    )
    if isinstance(args[0], _Blob):
        return _Blob("bytes", args[0].length)
    try:
        return args[0].encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ScanError("Refused: protocol 2 bytes hold characters past latin-1.") from exc


def _rule_dtype(rules: _Rules, name: str, args: tuple[Any, ...]) -> _Obj:
    _expect(
        len(args) == 3
        and _text(args[0])
        and _DESCR.fullmatch(args[0]) is not None
        and all(type(a) is bool for a in args[1:]),
        f"Refused: it creates a numpy dtype from {_show(args[0] if args else None)}, "
        "which is not a plain type code.",
    )
    descr = args[0]
    _expect(
        descr[0] not in "SUV" or _descr_itemsize(descr) > 0,
        "Refused: it creates a numpy dtype of size zero.",
    )
    return _Obj("numpy.dtype", args, descr=descr)


def _rule_array_reconstruct(rules: _Rules, name: str, args: tuple[Any, ...]) -> _Obj:
    _expect(
        len(args) == 3
        and isinstance(args[0], _Global)
        and args[0].name in ("numpy.ndarray", "numpy.matrix")
        and args[1] == (0,)
        and args[2] in (b"b", "b"),
        f"Refused: it calls {name} with arguments numpy never writes.",
    )
    rules.policy.require_class(args[0], "the array class")
    return _Obj(args[0].name, args)


def _rule_array_frombuffer(rules: _Rules, name: str, args: tuple[Any, ...]) -> _Obj:
    _expect(
        len(args) == 4 and isinstance(args[0], (bytes, _Blob)) and args[3] in ("C", "F"),
        f"Refused: it calls {name} with arguments numpy never writes.",
    )
    has_objects, _size = _dtype_info(args[1])
    _expect(not has_objects, "Refused: it reads Python objects from raw bytes.")
    shape = rules.budget.shape(args[2])
    rules.budget.count(shape)
    return _Obj("numpy.ndarray", shape=shape, dtype=args[1])


def _rule_scalar(rules: _Rules, name: str, args: tuple[Any, ...]) -> _Obj:
    _expect(len(args) == 2, f"Refused: it calls {name} with arguments numpy never writes.")
    has_objects, size = _dtype_info(args[0])
    _expect(not has_objects, "Refused: it makes a numpy object scalar from raw bytes.")
    data = args[1]
    ok = isinstance(data, bytes) and len(data) == size
    _expect(ok, f"Refused: it calls {name} with data that does not match its dtype.")
    return _Obj(None)


def _rule_masked_reconstruct(rules: _Rules, name: str, args: tuple[Any, ...]) -> _Obj:
    _expect(
        len(args) == 4
        and isinstance(args[0], _Global)
        and args[0].name in MASKED_ARRAY_CLASSES
        and isinstance(args[1], _Global)
        and args[1].name == "numpy.ndarray"
        and args[2] == (0,)
        and args[3] in (b"b", "b"),
        f"Refused: it calls {name} with arguments numpy never writes.",
    )
    rules.policy.require_class(args[0], "the masked array class")
    rules.policy.require_class(args[1], "the array class")
    return _Obj(args[0].name, args)


def _rule_ufunc_reconstruct(rules: _Rules, name: str, args: tuple[Any, ...]) -> _Global:
    # numpy 1.x pickles a ufunc as _ufunc_reconstruct(module, name), which imports module.name.
    _expect(
        len(args) == 2 and _text(args[0]) and _text(args[1]),
        f"Refused: it calls {name} with arguments other than two names.",
    )
    dotted = f"{args[0]}.{args[1]}"
    rules.policy.require_function(dotted, "a numpy ufunc")
    return _Global(dotted, "function" if rules.policy.allowlist is not None else "any")


def _bit_generator_class(value: Any) -> str | None:
    if _text(value) and value in BIT_GENERATORS:
        return BIT_GENERATORS[value]
    if isinstance(value, _Global) and value.name in BIT_GENERATORS.values():
        return value.name
    return None


def _rule_bit_generator(rules: _Rules, name: str, args: tuple[Any, ...]) -> _Obj:
    # __bit_generator_ctor(x) calls x() when x is a class: only numpy's own bit generators.
    cls = _bit_generator_class(args[0]) if len(args) == 1 else None
    _expect(cls is not None, f"Refused: it calls {name} with something other than a bit generator.")
    if isinstance(args[0], _Global):
        rules.policy.require_class(args[0], "the bit generator")
    return _Obj(cls)


def _random_ctor(rules: _Rules, name: str, args: tuple[Any, ...], result: str) -> _Obj:
    # The legacy form passes a constructor it then calls: only numpy's own is accepted.
    _expect(1 <= len(args) <= 2, f"Refused: it calls {name} with unexpected arguments.")
    first = args[0]
    ok = (isinstance(first, _Obj) and first.cls in BIT_GENERATORS.values()) or (
        _text(first) and first in BIT_GENERATORS
    )
    _expect(ok, f"Refused: it calls {name} with something other than a bit generator.")
    if len(args) == 2:
        ctor = args[1]
        _expect(
            isinstance(ctor, _Global) and ctor.name == "numpy.random._pickle.__bit_generator_ctor",
            f"Refused: it calls {name} with a constructor other than numpy's.",
        )
    return _Obj(result)


def _rule_random_generator(rules: _Rules, name: str, args: tuple[Any, ...]) -> _Obj:
    return _random_ctor(rules, name, args, GENERATOR)


def _rule_random_state(rules: _Rules, name: str, args: tuple[Any, ...]) -> _Obj:
    return _random_ctor(rules, name, args, RANDOM_STATE)


def _rule_cython_unpickle(rules: _Rules, name: str, args: tuple[Any, ...]) -> _Obj:
    # __pyx_unpickle_X(X, checksum, state) creates an X and fills its C fields from state.
    module, _, attr = name.rpartition(".")
    expected = f"{module}.{attr.removeprefix('__pyx_unpickle_')}"
    _expect(
        len(args) == 3
        and isinstance(args[0], _Global)
        and args[0].name == expected
        and _plain_int(args[1])
        and (args[2] is None or type(args[2]) is tuple),
        f"Refused: it calls {name} for something other than {expected}.",
    )
    cls = rules.policy.require_class(args[0], f"the class {name} creates")
    obj = rules.construct(cls, ())
    if args[2] is not None:
        rules.build(obj, args[2])
    return obj


def _rule_new_object(rules: _Rules, name: str, args: tuple[Any, ...]) -> _Obj:
    _expect(len(args) == 1, f"Refused: it calls {name} with unexpected arguments.")
    cls = rules.policy.require_class(args[0], f"the class {name} creates")
    return rules.construct(cls, ())


_RECONSTRUCTOR_RULES: dict[str, Callable[[_Rules, str, tuple[Any, ...]], Any]] = {
    "copyreg_reconstructor": _rule_copyreg_reconstructor,
    "copyreg_newobj": _rule_copyreg_newobj,
    "latin1_bytes": _rule_latin1_bytes,
    "dtype": _rule_dtype,
    "array_reconstruct": _rule_array_reconstruct,
    "array_frombuffer": _rule_array_frombuffer,
    "scalar": _rule_scalar,
    "masked_reconstruct": _rule_masked_reconstruct,
    "ufunc_reconstruct": _rule_ufunc_reconstruct,
    "bit_generator": _rule_bit_generator,
    "random_generator": _rule_random_generator,
    "random_state": _rule_random_state,
    "cython_unpickle": _rule_cython_unpickle,
    "new_object": _rule_new_object,
}
RECONSTRUCTOR_RULE_DESCRIPTIONS = {
    "copyreg_reconstructor": "(cls, builtins.object, None) with cls a listed class",
    "copyreg_newobj": "(cls, *args) with cls a listed class, as NEWOBJ",
    "latin1_bytes": "(text, 'latin1'): protocol 2 bytes",
    "dtype": "(type code, bool, bool) with a plain numpy type code; BUILD state checked",
    "array_reconstruct": "(numpy.ndarray, (0,), b'b'); BUILD state checked and shape bounded",
    "array_frombuffer": "(bytes, non-object dtype, bounded shape, 'C'|'F')",
    "scalar": "(non-object dtype, bytes of its item size)",
    "masked_reconstruct": "(numpy.ma.MaskedArray, numpy.ndarray, (0,), 'b'); BUILD state checked",
    "ufunc_reconstruct": "(module, name) naming a listed function",
    "bit_generator": "(one of numpy's bit generator names or classes)",
    "random_generator": "(bit generator[, numpy's bit generator constructor])",
    "random_state": "(bit generator[, numpy's bit generator constructor])",
    "cython_unpickle": "(the class of the same name, checksum, state tuple or None)",
    "new_object": "(cls) with cls a listed class: cls.__new__(cls)",
}


# State rules -------------------------------------------------------------------------------------


def _state_dtype(rules: _Rules, target: _Obj, state: Any) -> None:
    descr = target.descr or ""
    _expect(
        type(state) is tuple and len(state) in (8, 9),
        "Refused: a numpy dtype is given malformed state.",
    )
    version, order, subarray, names, fields, elsize, alignment, flags = state[:8]
    _expect(
        version in (3, 4)
        and order in ("<", ">", "|", "=")
        and subarray is None
        and _plain_int(elsize)
        and _plain_int(alignment)
        and _plain_int(flags),
        "Refused: a numpy dtype is given malformed state.",
    )
    if len(state) == 9:
        _expect(_plain_metadata(state[8]), "Refused: a numpy dtype carries unexpected metadata.")
    if descr.startswith("O"):
        _expect(
            flags == _CANONICAL_OBJECT_FLAGS and names is None and fields is None,
            "Refused: an object dtype is given altered flags.",
        )
        return
    _expect(
        not flags & _OBJECT_FLAGS,
        "Refused: a numeric dtype claims to hold Python objects.",
    )
    natural = _descr_itemsize(descr)
    if descr[0] in "SUV":
        _expect(elsize == natural, "Refused: a numpy dtype's size does not match its type code.")
    else:
        _expect(elsize == -1, "Refused: a numpy dtype's size does not match its type code.")
    if names is None and fields is None:
        return
    _expect(
        descr.startswith("V")
        and type(names) is tuple
        and isinstance(fields, dict)
        and len(names) == len(fields) <= 4096
        and all(_text(n) and n in fields for n in names),
        "Refused: a structured dtype is given malformed fields.",
    )
    for value in fields.values():
        _expect(
            type(value) is tuple and len(value) in (2, 3) and _plain_int(value[1]),
            "Refused: a structured dtype is given malformed fields.",
        )
        has_objects, size = _dtype_info(value[0])
        _expect(not has_objects, "Refused: a structured dtype holds Python objects.")
        _expect(
            value[0].state is None or value[0].state[3] is None,
            "Refused: a structured dtype nests another structured dtype.",
        )
        offset = value[1]
        _expect(
            offset >= 0 and offset + size <= elsize,
            "Refused: a structured dtype has a field outside its items (it would read "
            "memory it does not own).",
        )


def _plain_metadata(value: Any) -> bool:
    # Datetime units: (None, (b'ns', 1, 1, 1)).
    if value is None:
        return True
    return (
        type(value) is tuple
        and len(value) == 2
        and value[0] is None
        and type(value[1]) is tuple
        and len(value[1]) == 4
        and isinstance(value[1][0], bytes)
        and all(_plain_int(v) for v in value[1][1:])
    )


def _state_ndarray(rules: _Rules, target: _Obj, state: Any) -> None:
    # ndarray.__setstate__((version, shape, dtype, is_fortran, data)); numpy checks the length.
    _expect(
        type(state) is tuple and len(state) in (4, 5),
        "Refused: an array is given malformed state.",
    )
    shape_value, dtype, fortran, data = state[-4:]
    shape = rules.budget.shape(shape_value)
    has_objects, _size = _dtype_info(dtype)
    _expect(type(fortran) is bool, "Refused: an array is given malformed state.")
    if has_objects:
        _expect(type(data) is list, "Refused: an object array is given raw bytes.")
    else:
        _expect(
            isinstance(data, (bytes, _Blob)),
            "Refused: an array is given data that is not bytes.",
        )
    rules.budget.count(shape)
    target.shape, target.dtype = shape, dtype


def _state_masked(rules: _Rules, target: _Obj, state: Any) -> None:
    # MaskedArray.__setstate__((version, shape, dtype, is_fortran, data, mask, fill_value)).
    _expect(
        type(state) is tuple and len(state) == 7,
        "Refused: a masked array is given malformed state.",
    )
    _state_ndarray(rules, target, (state[0], state[1], state[2], state[3], state[4]))
    mask = state[5]
    _expect(
        isinstance(mask, (bytes, _Blob, list)),
        "Refused: a masked array is given a malformed mask.",
    )


def _mt_position(value: Any) -> None:
    # MT19937 reads key[pos] without a bounds check: pos past 624 reads other memory.
    _expect(
        _plain_int(value) and 0 <= value <= 624,
        "Refused: a random state has a position outside its key (it would read memory it "
        "does not own).",
    )


def _bit_generator_state(state: Any) -> None:
    _expect(isinstance(state, dict), "Refused: a random state is given malformed state.")
    name = state.get("bit_generator")
    _expect(name in BIT_GENERATORS, "Refused: a random state names an unknown bit generator.")
    inner = state.get("state")
    if name == "MT19937":
        _expect(isinstance(inner, dict), "Refused: a random state is given malformed state.")
        _mt_position(inner.get("pos"))
    if name == "Philox":
        _expect(
            _plain_int(state.get("buffer_pos")) and 0 <= state["buffer_pos"] <= 4,
            "Refused: a random state has a position outside its buffer.",
        )


def _state_bit_generator(rules: _Rules, target: _Obj, state: Any) -> None:
    # BitGenerator.__setstate__((state dict, seed sequence)) or (state dict).
    if type(state) is tuple:
        _expect(len(state) in (1, 2), "Refused: a bit generator is given malformed state.")
        state = state[0]
    _bit_generator_state(state)
    name = state["bit_generator"]
    _expect(
        BIT_GENERATORS[name] == target.cls,
        "Refused: a bit generator is given another generator's state.",
    )


def _state_random_state(rules: _Rules, target: _Obj, state: Any) -> None:
    if type(state) is tuple:  # the legacy ('MT19937', key, pos, has_gauss, gauss) form
        _expect(
            len(state) >= 3 and state[0] == "MT19937",
            "Refused: a random state is given malformed state.",
        )
        _mt_position(state[2])
        return
    _bit_generator_state(state)


def _state_generator(rules: _Rules, target: _Obj, state: Any) -> None:
    if state is None or state == {}:
        return
    _bit_generator_state(state)


def _state_seed_sequence(rules: _Rules, target: _Obj, state: Any) -> None:
    # (entropy, n_children_spawned, pool, pool_size, spawn_key): pool_size indexes pool.
    _expect(
        type(state) is tuple and len(state) == 5,
        "Refused: a seed sequence is given malformed state.",
    )
    pool, size = state[2], state[3]
    _expect(
        isinstance(pool, _Obj)
        and pool.shape is not None
        and len(pool.shape) == 1
        and _plain_int(size)
        and size == pool.shape[0],
        "Refused: a seed sequence's pool size does not match its pool.",
    )


def _state_partial(rules: _Rules, target: _Obj, state: Any) -> None:
    # partial.__setstate__((func, args, keywords, namespace)) replaces the function too.
    _expect(
        type(state) is tuple
        and len(state) == 4
        and type(state[1]) is tuple
        and (state[2] is None or isinstance(state[2], dict))
        and (state[3] is None or isinstance(state[3], dict)),
        "Refused: a functools.partial is given malformed state.",
    )
    rules.function_value(state[0], "a functools.partial")
    for part in (state[2], state[3]):
        for key in part or {}:
            _expect(
                _text(key) and not (key.startswith("__") and key.endswith("__")),
                "Refused: a functools.partial is given malformed keywords.",
            )


_STATE_RULES: dict[str, Callable[[_Rules, _Obj, Any], None]] = {
    "numpy.dtype": _state_dtype,
    "numpy.ndarray": _state_ndarray,
    "numpy.matrix": _state_ndarray,
    RANDOM_STATE: _state_random_state,
    GENERATOR: _state_generator,
    SEED_SEQUENCE: _state_seed_sequence,
    PARTIAL: _state_partial,
}


# --- the pickle machine --------------------------------------------------------------------------

_OPNAMES = {op.code.encode("latin-1")[0]: op.name for op in pickletools.opcodes}


class _Walker:
    """Walks one pickle (and, for joblib, the array payloads that follow wrappers)."""

    def __init__(
        self,
        buf: Any,
        end: int,
        *,
        rules: _Rules,
        report: ScanReport,
        joblib_arrays: bool,
    ) -> None:
        self.buf = buf
        self.end = end
        self.rules = rules
        self.policy = rules.policy
        self.budget = rules.budget
        self.limits = rules.budget.limits
        self.report = report
        self.joblib_arrays = joblib_arrays

    # reading ---------------------------------------------------------------------------------

    def _need(self, pos: int, n: int) -> None:
        if n < 0 or pos + n > self.end:
            raise ScanError(_TRUNCATED)

    def _payload(self, pos: int, n: int, kind: str) -> tuple[Any, int]:
        self._need(pos, n)
        if n > _INLINE_BYTES:
            return _Blob(kind, n), pos + n
        raw = bytes(self.buf[pos : pos + n])
        if kind == "str":
            try:
                return raw.decode("utf-8", "surrogatepass"), pos + n
            except UnicodeDecodeError as exc:
                raise ScanError("Refused: the pickle holds malformed text.") from exc
        if kind == "bytearray":
            return _Blob(kind, n), pos + n
        return raw, pos + n

    def _line(self, pos: int) -> tuple[str, int]:
        stop = self.buf.find(b"\n", pos, min(self.end, pos + 1024))
        _expect(stop >= 0, "Refused: the pickle names a global with an overlong name.")
        try:
            return bytes(self.buf[pos:stop]).decode("utf-8"), stop + 1
        except UnicodeDecodeError as exc:
            raise ScanError("Refused: the pickle names a global with malformed text.") from exc

    # globals ---------------------------------------------------------------------------------

    def _global(self, module: str, name: str, proto: int) -> _Global:
        # The unpickler renames Python 2 names for protocols below 3; so must the check.
        if proto < 3:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        dotted = f"{module}.{name}"
        self.report.globals.add(dotted)
        return self.policy.lookup(dotted)

    # the machine -------------------------------------------------------------------------------

    def walk(self, pos: int, depth: int = 0) -> int:
        """Walk one pickle from `pos` to its STOP; returns the position after it."""
        _expect(depth < 4, "Refused: pickles nested too deeply.")
        try:
            return self._walk(pos, depth)
        except (IndexError, struct.error):
            # Fixed-size arguments are read without a length check: past the end they raise.
            raise ScanError(_TRUNCATED) from None

    def _walk(self, pos: int, depth: int) -> int:
        buf, rules, limits, budget = self.buf, self.rules, self.limits, self.budget
        stack: list[Any] = []
        metastack: list[list[Any]] = []
        memo: dict[int, Any] = {}
        proto = 0
        frame_end = -1
        unpack = struct.unpack_from

        def pop_mark() -> list[Any]:
            nonlocal stack
            _expect(bool(metastack), "Refused: malformed pickle (MARK missing).")
            items = stack
            stack = metastack.pop()
            return items

        def pop() -> Any:
            _expect(bool(stack), "Refused: malformed pickle (empty stack).")
            return stack.pop()

        def top() -> Any:
            _expect(bool(stack), "Refused: malformed pickle (empty stack).")
            return stack[-1]

        def put(index: int) -> None:
            _expect(
                index < limits.max_memo and len(memo) < limits.max_memo,
                f"Refused: the pickle uses more than {limits.max_memo} memo entries.",
            )
            memo[index] = top()

        def get(index: int) -> None:
            _expect(index in memo, "Refused: malformed pickle (unknown memo key).")
            stack.append(memo[index])

        report = self.report
        count = report.opcodes
        checkpoint = count
        while True:
            count += 1
            if count > checkpoint:
                # Limits are checked every few thousand opcodes, and exactly at the opcode limit.
                report.opcodes = count
                budget.tick()
                _expect(
                    count <= limits.max_opcodes,
                    f"Refused: the pickle has more than {limits.max_opcodes} opcodes.",
                )
                _expect(
                    len(stack) <= limits.max_stack and len(metastack) <= limits.max_stack,
                    f"Refused: the pickle's stack grows past {limits.max_stack} entries.",
                )
                checkpoint = min(count + 4096, limits.max_opcodes)
            try:
                op = buf[pos]
            except IndexError:
                raise ScanError(_TRUNCATED) from None
            pos += 1
            if op == 0x71:  # BINPUT
                put(buf[pos])
                pos += 1
            elif op == 0x94:  # MEMOIZE
                put(len(memo))
            elif op == 0x8C:  # SHORT_BINUNICODE
                value, pos = self._payload(pos + 1, buf[pos], "str")
                stack.append(value)
            elif op == 0x58:  # BINUNICODE
                value, pos = self._payload(pos + 4, unpack("<I", buf, pos)[0], "str")
                stack.append(value)
            elif op == 0x4B:  # BININT1
                stack.append(buf[pos])
                pos += 1
            elif op == 0x4D:  # BININT2
                stack.append(unpack("<H", buf, pos)[0])
                pos += 2
            elif op == 0x4A:  # BININT
                stack.append(unpack("<i", buf, pos)[0])
                pos += 4
            elif op == 0x68:  # BINGET
                get(buf[pos])
                pos += 1
            elif op == 0x6A:  # LONG_BINGET
                get(unpack("<I", buf, pos)[0])
                pos += 4
            elif op == 0x72:  # LONG_BINPUT
                put(unpack("<I", buf, pos)[0])
                pos += 4
            elif op == 0x28:  # MARK
                metastack.append(stack)
                stack = []
            elif op == 0x85:  # TUPLE1
                stack.append((pop(),))
            elif op == 0x86:  # TUPLE2
                b, a = pop(), pop()
                stack.append((a, b))
            elif op == 0x87:  # TUPLE3
                c, b, a = pop(), pop(), pop()
                stack.append((a, b, c))
            elif op == 0x74:  # TUPLE
                items = pop_mark()
                stack.append(tuple(items))
            elif op == 0x29:  # EMPTY_TUPLE
                stack.append(())
            elif op == 0x5D:  # EMPTY_LIST
                stack.append([])
            elif op == 0x7D:  # EMPTY_DICT
                stack.append({})
            elif op == 0x4E:  # NONE
                stack.append(None)
            elif op == 0x88:  # NEWTRUE
                stack.append(True)
            elif op == 0x89:  # NEWFALSE
                stack.append(False)
            elif op == 0x47:  # BINFLOAT
                stack.append(unpack(">d", buf, pos)[0])
                pos += 8
            elif op in (0x8A, 0x8B):  # LONG1, LONG4
                width = 1 if op == 0x8A else 4
                self._need(pos, width)
                n = buf[pos] if op == 0x8A else unpack("<i", buf, pos)[0]
                pos += width
                _expect(
                    0 <= n <= limits.max_long_bytes,
                    f"Refused: the pickle holds an integer longer than {limits.max_long_bytes} "
                    "bytes.",
                )
                self._need(pos, n)
                stack.append(int.from_bytes(buf[pos : pos + n], "little", signed=True))
                pos += n
            elif op == 0x43:  # SHORT_BINBYTES
                value, pos = self._payload(pos + 1, buf[pos], "bytes")
                stack.append(value)
            elif op == 0x42:  # BINBYTES
                value, pos = self._payload(pos + 4, unpack("<I", buf, pos)[0], "bytes")
                stack.append(value)
            elif op in (0x8D, 0x8E, 0x96):  # BINUNICODE8, BINBYTES8, BYTEARRAY8
                kind = {0x8D: "str", 0x8E: "bytes", 0x96: "bytearray"}[op]
                value, pos = self._payload(pos + 8, unpack("<Q", buf, pos)[0], kind)
                stack.append(value)
            elif op == 0x61:  # APPEND
                value = pop()
                target = top()
                _expect(type(target) is list, _CONTAINER_MESSAGE)
                rules.values(value)
                target.append(value)
            elif op == 0x65:  # APPENDS
                items = pop_mark()
                target = top()
                _expect(type(target) is list, _CONTAINER_MESSAGE)
                rules.values(items)
                target.extend(items)
            elif op == 0x73:  # SETITEM
                value, key = pop(), pop()
                self._setitems(top(), [key, value])
            elif op == 0x75:  # SETITEMS
                items = pop_mark()
                self._setitems(top(), items)
            elif op == 0x8F:  # EMPTY_SET
                stack.append(_SetVal())
            elif op == 0x90:  # ADDITEMS
                items = pop_mark()
                target = top()
                _expect(isinstance(target, _SetVal), _CONTAINER_MESSAGE)
                rules.values(items)
                target.items.extend(items)
            elif op == 0x91:  # FROZENSET
                stack.append(_SetVal(pop_mark()))
            elif op == 0x6C:  # LIST
                stack.append(pop_mark())
            elif op == 0x64:  # DICT
                items = pop_mark()
                _expect(len(items) % 2 == 0, "Refused: malformed pickle (odd dict).")
                stack.append(self._dict(items))
            elif op == 0x30:  # POP
                if stack:
                    stack.pop()
                else:
                    pop_mark()
            elif op == 0x31:  # POP_MARK
                pop_mark()
            elif op == 0x32:  # DUP
                stack.append(top())
            elif op == 0x63:  # GLOBAL
                module, pos = self._line(pos)
                name, pos = self._line(pos)
                stack.append(self._global(module, name, proto))
            elif op == 0x93:  # STACK_GLOBAL
                name, module = pop(), pop()
                _expect(
                    _text(module) and _text(name),
                    "Refused: a global is named by something other than text.",
                )
                stack.append(self._global(module, name, proto))
            elif op == 0x52:  # REDUCE
                args, func = pop(), pop()
                stack.append(rules.call(func, args))
            elif op == 0x81:  # NEWOBJ
                args, cls = pop(), pop()
                stack.append(rules.newobj(cls, args))
            elif op == 0x92:  # NEWOBJ_EX
                kwargs, args, cls = pop(), pop(), pop()
                stack.append(rules.newobj(cls, args, kwargs))
            elif op == 0x62:  # BUILD
                state = pop()
                target = top()
                rules.build(target, state)
                if self.joblib_arrays and target.cls == JOBLIB_WRAPPER:
                    _expect(
                        pos >= frame_end,
                        "Refused: malformed joblib file (array data inside a pickle frame).",
                    )
                    report.opcodes = count
                    stack[-1], pos = self._joblib_array(target, pos, depth)
                    count = checkpoint = report.opcodes
            elif op == 0x80:  # PROTO
                proto = buf[pos]
                pos += 1
                _expect(proto <= 5, "Refused: the pickle declares an unknown protocol.")
            elif op == 0x95:  # FRAME
                size = unpack("<Q", buf, pos)[0]
                pos += 8
                _expect(
                    frame_end < 0 or pos >= frame_end,
                    "Refused: malformed pickle (a frame starts inside another).",
                )
                self._need(pos, size)
                frame_end = pos + size
            elif op == 0x2E:  # STOP
                _expect(
                    len(stack) == 1 and not metastack,
                    "Refused: malformed pickle (the stack is not a single object at STOP).",
                )
                _expect(
                    depth == 0 or pos >= frame_end,
                    "Refused: malformed joblib file (an array ends inside a pickle frame).",
                )
                rules.values(stack[0])
                report.opcodes = count
                return pos
            else:
                opname = _OPNAMES.get(op)
                if opname is None:
                    raise ScanError(f"Refused: not a readable pickle (unknown opcode {op:#x}).")
                # PERSID, EXT*, NEXT_BUFFER, INST, OBJ and the text opcodes of protocols 0-1:
                # never written by pickle.dump (protocol 2-5) or joblib for a model.
                raise ScanError(f"Refused: the pickle uses the {opname} opcode.")

    def _dict(self, items: list[Any]) -> dict[Any, Any]:
        try:
            return dict(zip(items[::2], items[1::2], strict=True))
        except TypeError as exc:
            raise ScanError("Refused: malformed pickle (unhashable dict key).") from exc

    def _setitems(self, target: Any, items: list[Any]) -> None:
        _expect(len(items) % 2 == 0, "Refused: malformed pickle (odd dict items).")
        self.rules.values(items)
        if type(target) is dict:
            target.update(self._dict(items))
            return
        _expect(
            isinstance(target, _Obj) and target.cls in MAPPING_CLASSES,
            _CONTAINER_MESSAGE,
        )

    def _joblib_array(self, wrapper: _Obj, pos: int, depth: int) -> tuple[_Obj, int]:
        """Step over the array joblib reads right after a NumpyArrayWrapper's BUILD."""
        attrs = wrapper.attrs
        subclass = attrs.get("subclass")
        _expect(
            isinstance(subclass, _Global) and subclass.name == "numpy.ndarray",
            "Refused: a joblib array names a class other than numpy.ndarray.",
        )
        _expect(attrs.get("order") in ("C", "F"), "Refused: malformed joblib array header.")
        shape = self.budget.shape(attrs.get("shape"))
        dtype = attrs.get("dtype")
        has_objects, itemsize = _dtype_info(dtype)
        count = self.budget.count(shape)
        array = _Obj("numpy.ndarray", shape=shape, dtype=dtype)
        if has_objects:
            # joblib reads object arrays with a fresh, plain unpickler (no wrappers) from here.
            nested = _Walker(
                self.buf, self.end, rules=self.rules, report=self.report, joblib_arrays=False
            )
            return array, nested.walk(pos, depth + 1)
        if "numpy_array_alignment_bytes" in attrs:
            self._need(pos, 1)
            pos += 1 + self.buf[pos]
        nbytes = count * itemsize
        _expect(pos + nbytes <= self.end, "Refused: the joblib file is truncated.")
        return array, pos + nbytes


_TRUNCATED = "Refused: the pickle is truncated (it ends early or declares more data than it holds)."
_CONTAINER_MESSAGE = "Refused: the pickle adds items to something that is not a plain container."


# --- containers ----------------------------------------------------------------------------------


def sniff(head: bytes) -> str | None:
    """The container the first bytes announce: 'zip', 'pickle', a compression name, or None."""
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(PICKLE_MAGIC) and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    for magic, name in COMPRESSION_MAGIC.items():
        if head.startswith(magic):
            return name
    return None


def container_problem(head: bytes) -> str:
    if not head:
        return "Refused: the file is empty."
    if head.startswith(b"ZF"):
        return "Refused: joblib files from before joblib 0.9.3 are not supported; re-save it."
    if head.startswith(PICKLE_MAGIC) or head[:1] in (b"(", b"c", b"]", b"}"):
        return "Refused: pickle protocols 0 and 1 are not accepted; save with protocol 2-5."
    return "Refused: the file is not a pickle, a joblib file or a skops file."


def _decompressor(container: str, raw: IO[bytes]) -> Any:
    if container == "zlib":
        return _ZlibReader(raw)
    if container == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if container == "bz2":
        return bz2.BZ2File(raw, mode="rb")
    if container in ("xz", "lzma"):
        return lzma.LZMAFile(raw, mode="rb")
    if container == "lz4":
        import lz4.frame

        return lz4.frame.LZ4FrameFile(raw, mode="rb")
    raise ScanError(f"Refused: unknown compression {container}.")


class _ZlibReader(io.RawIOBase):
    """Streams a raw zlib stream (joblib's .z container) as a file."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.inflater = zlib.decompressobj()
        self.pending = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self.inflater.eof and (size < 0 or len(self.pending) < size):
            # Input left over from a capped decompress comes first, then fresh blocks.
            data = self.inflater.unconsumed_tail or self.raw.read(CHUNK)
            if not data:
                raise ScanError("Refused: the compressed joblib file is truncated.")
            self.pending += self.inflater.decompress(data, CHUNK)
        if size < 0:
            size = len(self.pending)
        out, self.pending = self.pending[:size], self.pending[size:]
        return out


def _expand(container: str, raw: IO[bytes], budget: _Budget, spill: IO[bytes] | None) -> IO[bytes]:
    """Decompress into `spill` (a confined process cannot create files, so its parent hands it
    one) or a temporary file, refusing past the expansion cap (zip/zlib bombs)."""
    limit = budget.limits.max_expanded_bytes
    out = spill if spill is not None else tempfile.TemporaryFile()  # noqa: SIM115 - caller closes
    try:
        reader = _decompressor(container, raw)
        total = 0
        while True:
            block = reader.read(CHUNK)
            if not block:
                break
            total += len(block)
            if total > limit:
                raise ScanError(
                    f"Refused: the {container}-compressed file expands past {limit} bytes."
                )
            out.write(block)
            budget.tick()
    except ScanError:
        out.close()
        raise
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, RuntimeError) as exc:
        out.close()
        raise ScanError(f"Refused: the {container}-compressed file is corrupt ({exc}).") from exc
    budget.report.expanded_bytes = total
    out.seek(0)
    return out


def _walk_pickle_file(stream: IO[bytes], *, joblib_arrays: bool, rules: _Rules) -> None:
    head = stream.read(2)
    _expect(len(head) == 2 and sniff(head) == "pickle", "Refused: not a pickle (protocol 2-5).")
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        walker = _Walker(
            buf, size, rules=rules, report=rules.budget.report, joblib_arrays=joblib_arrays
        )
        walker.walk(0)


# --- skops ---------------------------------------------------------------------------------------

MAX_ZIP_ENTRIES = 100_000
MAX_ZIP_RATIO = 500
# skops reads schema.json whole into memory; real ones are kilobytes to a few megabytes.
MAX_SKOPS_SCHEMA_BYTES = 64 * 1024 * 1024
_NPY_MAGIC = b"\x93NUMPY"


def _check_zip(path: Path, limits: ScanLimits) -> list[zipfile.ZipInfo]:
    limit = limits.max_expanded_bytes
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ScanError(f"Refused: not a readable skops (zip) file ({exc}).") from exc
    _expect(len(infos) <= MAX_ZIP_ENTRIES, "Refused: the skops file holds too many entries.")
    total = 0
    for info in infos:
        total += info.file_size
        _expect(
            not info.filename.startswith("/") and ".." not in Path(info.filename).parts,
            f"Refused: the skops file holds an entry outside itself ({info.filename}).",
        )
        if info.file_size > CHUNK and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
            raise ScanError(
                f"Refused: {info.filename} in the skops file expands {info.file_size} bytes "
                f"from {info.compress_size} (a zip bomb)."
            )
    _expect(
        total <= limit,
        f"Refused: the skops file expands to {total} bytes, past {limit}.",
    )
    schema = next((info for info in infos if info.filename == "schema.json"), None)
    _expect(schema is not None, "Refused: a zip file, but not a skops file.")
    _expect(
        schema is not None and schema.file_size <= MAX_SKOPS_SCHEMA_BYTES,
        "Refused: the skops schema is larger than any model needs.",
    )
    return infos


class _SkopsWalker:
    """Turns skops' schema into the same symbolic objects the pickle walk builds, and checks them.

    It mirrors skops' loader (``skops/io/_general.py`` and friends): which node kinds exist, which
    class each one imports and calls, and its memo of nodes by ``__id__`` (a later node with a
    known id is replaced by the first one, whatever it says).
    """

    def __init__(self, archive: zipfile.ZipFile, rules: _Rules, report: ScanReport) -> None:
        self.archive = archive
        self.rules = rules
        self.policy = rules.policy
        self.report = report
        self.memo: dict[Any, Any] = {}
        self.names: set[str] = set()

    def name(self, node: dict[str, Any]) -> str:
        module, cls = node.get("__module__"), node.get("__class__")
        _expect(_text(module) and _text(cls), "Refused: a skops node names no type.")
        return f"{module}.{cls}"

    def glob(self, dotted: str) -> _Global:
        self.report.globals.add(dotted)
        self.names.add(dotted)
        return self.policy.lookup(dotted)

    def klass(self, node: dict[str, Any], allowed: frozenset[str] | None = None) -> str:
        dotted = self.name(node)
        if allowed is not None:
            _expect(dotted in allowed, f"Refused: the skops file builds {dotted} unexpectedly.")
        return self.policy.require_class(self.glob(dotted), f"the skops type {dotted}")

    def value(self, node: Any, depth: int = 0) -> Any:
        # Each level costs a few Python frames; real models nest a few dozen levels.
        _expect(depth < 200, "Refused: the skops file nests objects too deeply.")
        _expect(isinstance(node, dict), "Refused: malformed skops schema.")
        self.report.opcodes += 1
        if not self.report.opcodes & 0xFFF:
            self.rules.budget.tick()
            _expect(
                self.report.opcodes <= self.rules.budget.limits.max_opcodes,
                "Refused: the skops file holds more objects than any model needs.",
            )
        saved_id = node.get("__id__")
        if saved_id is not None and _hashable(saved_id) and saved_id in self.memo:
            return self.memo[saved_id]
        loader = node.get("__loader__")
        handler = _SKOPS_LOADERS.get(loader) if _text(loader) else None
        _expect(handler is not None, f"Refused: the skops file uses the loader {loader!r}.")
        assert handler is not None
        return handler(self, node, depth + 1)

    def remember(self, node: dict[str, Any], value: Any) -> Any:
        saved_id = node.get("__id__")
        if saved_id and _hashable(saved_id):
            self.memo[saved_id] = value
        return value

    def npy(self, filename: Any) -> tuple[int, ...]:
        """The shape in a .npy header, bounded; numpy refuses object arrays there itself."""
        _expect(_text(filename), "Refused: a skops array names no file.")
        try:
            with self.archive.open(filename) as entry:
                head = entry.read(10)
                _expect(head[:6] == _NPY_MAGIC, "Refused: a skops array is not a .npy file.")
                major = head[6]
                if major == 1:
                    length = struct.unpack("<H", head[8:10])[0]
                else:
                    length = struct.unpack("<I", head[8:10] + entry.read(2))[0]
                _expect(length <= 65536, "Refused: a skops array header is too long.")
                header = ast.literal_eval(entry.read(length).decode("latin-1"))
        except (KeyError, OSError, ValueError, SyntaxError, zipfile.BadZipFile) as exc:
            raise ScanError(f"Refused: a skops array cannot be read ({exc}).") from exc
        _expect(isinstance(header, dict), "Refused: a skops array header is malformed.")
        shape = self.rules.budget.shape(header.get("shape"))
        self.rules.budget.count(shape)
        return shape


def _field(node: dict[str, Any], key: str, kind: type) -> Any:
    """node[key], which skops' loader needs to be of `kind`."""
    value = node.get(key)
    _expect(isinstance(value, kind), "Refused: malformed skops schema.")
    return value


def _hashable(value: Any) -> bool:
    return isinstance(value, (int, str))


def _skops_object(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> _Obj:
    # ObjectNode: cls.__new__(cls), then __setstate__(attrs) or __dict__.update(attrs).
    cls = walker.klass(node)
    obj = walker.remember(node, walker.rules.construct(cls, ()))
    content = node.get("content")
    if content is not None:
        walker.rules.build(obj, walker.value(content, depth))
    return obj


def _skops_reduce(walker: _SkopsWalker, node: dict[str, Any], depth: int, cls: str) -> _Obj:
    # ReduceNode and kin: cls(*args), then __setstate__(attrs).
    obj = _Obj(cls)
    walker.remember(node, obj)
    reduce = _field(node, "__reduce__", dict)
    args = walker.value(reduce.get("args"), depth)
    _expect(type(args) is tuple, "Refused: malformed skops schema (constructor arguments).")
    built = walker.rules.construct(cls, args)
    obj.args, obj.shape, obj.attrs = built.args, built.shape, built.attrs
    attrs = walker.value(node.get("content"), depth)
    if attrs:
        walker.rules.build(obj, attrs)
    return obj


def _skops_tree(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> _Obj:
    cls = walker.klass(node, frozenset({"sklearn.tree._tree.Tree"}))
    return _skops_reduce(walker, node, depth, cls)


def _skops_loss(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> _Obj:
    return _skops_reduce(walker, node, depth, walker.klass(node))


def _skops_constructor(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> _Obj:
    cls = walker.klass(node)
    args = walker.value(node.get("content"), depth)
    _expect(type(args) is tuple, "Refused: malformed skops schema (constructor arguments).")
    return walker.remember(node, walker.rules.construct(cls, args))


def _skops_dict(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> Any:
    walker.klass(node, MAPPING_CLASSES - {"collections.defaultdict"})
    result: dict[Any, Any] = walker.remember(node, {})
    # Keys are rebuilt by calling the recorded key types on text: only plain scalar types.
    key_types = walker.value(node.get("key_types"), depth)
    _expect(type(key_types) is list, "Refused: malformed skops schema (dict key types).")
    for key_type in key_types:
        _expect(
            isinstance(key_type, _Global) and _scalar_type(key_type.name),
            "Refused: a skops dict rebuilds its keys with something other than a scalar type.",
        )
    content = _field(node, "content", dict)
    for key, value in content.items():
        result[key] = walker.value(value, depth)
    walker.rules.values(result)
    return result


def _scalar_type(name: str) -> bool:
    module, _, attr = name.rpartition(".")
    if module == "builtins":
        return attr in ("str", "int", "float", "bool", "complex")
    return module == "numpy" and attr in _NUMPY_SCALAR_NAMES


def _skops_defaultdict(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> _Obj:
    walker.klass(node, frozenset({"collections.defaultdict"}))
    obj = walker.remember(node, _Obj("collections.defaultdict"))
    content = _field(node, "content", dict)
    walker.value(content.get("main"), depth)
    factory = walker.value(content.get("default_factory"), depth)
    _expect(
        factory is None or (isinstance(factory, _Global) and factory.name in DEFAULT_FACTORIES),
        "Refused: a defaultdict would call something other than a plain container.",
    )
    return obj


def _skops_sequence(allowed: frozenset[str], make: Callable[[list[Any]], Any]) -> Any:
    def load(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> Any:
        # skops calls the recorded type on the items: only the plain container types.
        walker.klass(node, allowed)
        content = _field(node, "content", list)
        items = [walker.value(item, depth) for item in content]
        value = make(items)
        walker.rules.values(value)
        return walker.remember(node, value)

    return load


def _skops_function(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> _Global:
    dotted = walker.name(node)
    value = walker.glob(dotted)
    walker.policy.require_function(dotted, "the skops file")
    return walker.remember(node, value)


def _skops_type(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> _Global:
    dotted = walker.name(node)
    value = walker.glob(dotted)
    walker.policy.require_class(value, f"the skops type {dotted}")
    walker.policy.note(value, "value")
    return walker.remember(node, value)


def _skops_json(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> Any:
    content = _field(node, "content", str)
    try:
        return walker.remember(node, json.loads(content))
    except (ValueError, RecursionError) as exc:
        raise ScanError("Refused: malformed skops schema (JSON value).") from exc


def _skops_bytes(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> _Blob:
    return walker.remember(node, _Blob("bytes", 0))


def _skops_slice(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> _Obj:
    walker.klass(node, frozenset({"builtins.slice"}))
    _field(node, "content", dict)
    return walker.remember(node, _Obj("builtins.slice"))


def _skops_ndarray(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> _Obj:
    dotted = walker.name(node)
    module, _, attr = dotted.rpartition(".")
    # skops calls the recorded type on the loaded array unless it is ndarray: scalar types only.
    _expect(
        dotted == "numpy.ndarray" or (module == "numpy" and attr in _NUMPY_SCALAR_NAMES),
        f"Refused: the skops file builds {dotted} from an array.",
    )
    walker.policy.require_class(walker.glob(dotted), f"the skops type {dotted}")
    kind = node.get("type")
    if kind == "numpy":
        return walker.remember(node, _Obj("numpy.ndarray", shape=walker.npy(node.get("file"))))
    _expect(kind == "json", "Refused: a skops array has an unknown storage type.")
    obj = walker.remember(node, _Obj("numpy.ndarray"))
    content = _field(node, "content", list)
    items = [walker.value(item, depth) for item in content]
    shape = walker.value(node.get("shape"), depth)
    _expect(isinstance(shape, (list, tuple)), "Refused: malformed skops schema (array shape).")
    walker.rules.budget.shape(tuple(shape))
    walker.rules.values(items)
    walker.rules.budget.count((len(items),))
    return obj


def _skops_masked(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> _Obj:
    walker.klass(node, MASKED_ARRAY_CLASSES)
    content = _field(node, "content", dict)
    obj = walker.remember(node, _Obj("numpy.ma.MaskedArray"))
    walker.value(content.get("data"), depth)
    walker.value(content.get("mask"), depth)
    return obj


def _skops_dtype(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> _Obj:
    # A dtype is stored as an empty .npy array of that dtype; numpy parses its header.
    walker.value(node.get("content"), depth)
    return walker.remember(node, _Obj("numpy.dtype", descr="V0"))


def _skops_sparse(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> _Obj:
    cls = walker.klass(node)
    _expect(node.get("type") == "scipy", "Refused: a skops sparse matrix has an unknown type.")
    _expect(_text(node.get("file")), "Refused: a skops sparse matrix names no file.")
    return walker.remember(node, _Obj(cls))


def _skops_random_state(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> _Obj:
    walker.klass(node, frozenset({RANDOM_STATE, "numpy.random.RandomState"}))
    obj = walker.remember(node, _Obj(RANDOM_STATE))
    _bit_generator_state(walker.value(node.get("content"), depth))
    return obj


def _skops_generator(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> _Obj:
    walker.klass(node, frozenset({GENERATOR, "numpy.random.Generator"}))
    obj = walker.remember(node, _Obj(GENERATOR))
    content = _field(node, "content", dict)
    _bit_generator_state(walker.value(content.get("bit_generator"), depth))
    seed = walker.value(content.get("seed_seq"), depth)
    _expect(isinstance(seed, dict), "Refused: malformed skops schema (seed sequence).")
    return obj


def _skops_partial(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> _Obj:
    # skops always builds a functools.partial here, whatever the node names.
    walker.klass(node, frozenset({PARTIAL}))
    content = _field(node, "content", dict)
    obj = walker.remember(node, _Obj(PARTIAL))
    func = walker.value(content.get("func"), depth)
    args = walker.value(content.get("args"), depth)
    kwds = walker.value(content.get("kwds"), depth)
    namespace = walker.value(content.get("namespace"), depth)
    walker.rules.build(obj, (func, args, kwds, namespace))
    return obj


def _skops_cached(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> Any:
    saved_id = node.get("__id__")
    _expect(
        _hashable(saved_id) and saved_id in walker.memo,
        "Refused: the skops file refers to an object it never stored.",
    )
    return walker.memo[saved_id]


def _skops_refused(what: str) -> Callable[[_SkopsWalker, dict[str, Any], int], Any]:
    def load(walker: _SkopsWalker, node: dict[str, Any], depth: int) -> Any:
        raise ScanError(f"Refused: the skops file holds {what} ({walker.name(node)}).")

    return load


_SKOPS_LOADERS: dict[str, Callable[[_SkopsWalker, dict[str, Any], int], Any]] = {
    "ObjectNode": _skops_object,
    "TreeNode": _skops_tree,
    "LossNode": _skops_loss,
    "ConstructorFromReduceNode": _skops_constructor,
    "DictNode": _skops_dict,
    "DefaultDictNode": _skops_defaultdict,
    "ListNode": _skops_sequence(frozenset({"builtins.list"}), lambda items: items),
    "TupleNode": _skops_sequence(frozenset({"builtins.tuple"}), tuple),
    "SetNode": _skops_sequence(frozenset({"builtins.set", "builtins.frozenset"}), _SetVal),
    "FunctionNode": _skops_function,
    "TypeNode": _skops_type,
    "JsonNode": _skops_json,
    "BytesNode": _skops_bytes,
    "BytearrayNode": _skops_bytes,
    "SliceNode": _skops_slice,
    "NdArrayNode": _skops_ndarray,
    "MaskedArrayNode": _skops_masked,
    "DTypeNode": _skops_dtype,
    "SparseMatrixNode": _skops_sparse,
    "RandomStateNode": _skops_random_state,
    "RandomGeneratorNode": _skops_generator,
    "CachedNode": _skops_cached,
    "MethodNode": _skops_refused("a bound method"),
    "PartialNode": _skops_partial,
    "OperatorFuncNode": _skops_refused("an operator function"),
    "QuantileForestNode": _skops_refused("a quantile-forest tree"),
}


def _scan_skops(path: Path, rules: _Rules, report: ScanReport) -> None:
    _check_zip(path, rules.budget.limits)
    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
            _expect(isinstance(schema, dict), "Refused: malformed skops schema.")
            walker = _SkopsWalker(archive, rules, report)
            root = walker.value(schema)
    except ScanError:
        raise
    except (ValueError, RecursionError, OSError, zipfile.BadZipFile, KeyError) as exc:
        raise ScanError(f"Refused: not a readable skops file ({exc}).") from exc
    rules.values(root)
    # skops' own audit must not name anything the walk above did not see and check.
    for dotted in _skops_own_view(path):
        if dotted not in walker.names:
            walker.glob(dotted)
    report.untrusted_types = sorted(walker.names)


def _skops_own_view(path: Path) -> list[str]:
    # Builds skops' node tree without constructing anything (skops/io/_audit.py: Node.__init__
    # imports nothing; the classes are imported only in _construct).
    import skops.io as sio

    try:
        return list(sio.get_untrusted_types(file=path))
    except Exception as exc:  # skops raises many kinds on a malformed file; all mean "refuse"
        raise ScanError(f"Refused: skops could not read the file ({exc}).") from exc


# --- entry points --------------------------------------------------------------------------------


def artifact_scan(
    *,
    path: Path,
    fmt: str,
    limits: ScanLimits | None = None,
    allowlist: Allowlist | None = None,
    spill: IO[bytes] | None = None,
) -> ScanReport:
    """Scan a local artifact file of the given format; raises ScanError with the reason.

    `spill`, an empty writable file, receives a compressed joblib file's expanded bytes.
    """
    policy = _Policy(allowlist or allowlist_default())
    return _scan(path, fmt, limits or ScanLimits(), policy, spill)


def artifact_uses(*, path: Path, fmt: str, limits: ScanLimits | None = None) -> dict[str, set[str]]:
    """Every global a trusted artifact names and how ("call", "new", "value").

    The structure and argument rules apply, the allowlist does not: this is how the allowlist
    generator learns what real models need.
    """
    policy = _Policy(None)
    _scan(path, fmt, limits or ScanLimits(), policy)
    return policy.uses


def _scan(
    path: Path, fmt: str, limits: ScanLimits, policy: _Policy, spill: IO[bytes] | None = None
) -> ScanReport:
    report = ScanReport(format=fmt)
    budget = _Budget(limits, report)
    rules = _Rules(policy, budget)
    with path.open("rb") as raw:
        head = raw.read(8)
    container = sniff(head)
    if fmt == "skops":
        _expect(container == "zip", "Refused: a .skops file must be a zip archive.")
        report.container = "zip"
        _scan_skops(path, rules, report)
        return report
    if fmt not in ("joblib", "pickle"):
        raise ScanError(f"Refused: unknown format {fmt!r}.")
    _expect(container is not None and container != "zip", container_problem(head))
    with path.open("rb") as raw:
        if container == "pickle":
            _walk_pickle_file(raw, joblib_arrays=fmt == "joblib", rules=rules)
            return report
        _expect(fmt == "joblib", "Refused: a compressed file must be uploaded as .joblib.")
        report.container = str(container)
        with _expand(str(container), raw, budget, spill) as expanded:
            _walk_pickle_file(expanded, joblib_arrays=True, rules=rules)
    return report


def iter_reconstructor_rules() -> Iterator[tuple[str, str]]:
    """(rule, what it accepts) for every argument rule this scanner enforces."""
    yield from sorted(RECONSTRUCTOR_RULE_DESCRIPTIONS.items())
