"""Static scan of an uploaded artifact: decides, without deserialising it, whether it may be loaded.

A pickle is a program for a small stack machine; the only way it can run code is by importing a
global (``GLOBAL``, ``STACK_GLOBAL``, ``INST``) and calling it (``REDUCE``, ``NEWOBJ``, ``OBJ``,
``BUILD`` via ``__setstate__``). So the scan walks every opcode with `pickletools.genops`, keeps a
symbolic stack and memo (``STACK_GLOBAL`` may take its names from the memo), and checks every
global against an allowlist. It never calls anything, and any error (truncated stream, unknown
opcode, odd stack) rejects the artifact: there is no "probably fine".

joblib files are not plain pickles: they may be compressed (zlib, gzip, bz2, lzma/xz, lz4), and each
numpy array is pickled as a `NumpyArrayWrapper` followed by the raw array bytes (or, for object
arrays, a nested pickle). The walker undoes the compression into a capped temporary file and skips
(or recursively scans) the array payload after each wrapper's ``BUILD``.

skops files are zip archives; they are checked for zip bombs, then
`skops.io.get_untrusted_types` lists the types they need, each checked against the same allowlist.
"""

import bz2
import gzip
import importlib
import inspect
import io
import lzma
import pickletools
import tempfile
import types
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from django.conf import settings

CHUNK = 1024 * 1024

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

# Libraries whose classes and functions a fitted scikit-learn model is made of.
ALLOWED_PACKAGES = ("sklearn", "numpy", "scipy")
# Exact names pickles of those objects need from the standard library and joblib.
ALLOWED_NAMES = frozenset(
    {
        "builtins.object",
        "builtins.set",
        "builtins.frozenset",
        "builtins.slice",
        "builtins.complex",
        "builtins.bytearray",
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.int",
        "builtins.float",
        "builtins.str",
        "builtins.bool",
        "builtins.bytes",
        "copyreg._reconstructor",  # protocols 0/1 rebuild objects through it
        "_codecs.encode",  # protocol 2 pickles bytes as _codecs.encode(str, "latin1")
        "collections.OrderedDict",
        "collections.defaultdict",
        "joblib.numpy_pickle.NumpyArrayWrapper",
    }
)
# Parts of the allowed libraries that read or write files, fetch URLs or build and load code. An
# artifact has no business calling them while being loaded.
REFUSED_MODULE_PREFIXES = (
    "numpy.f2py",
    "numpy.distutils",
    "numpy.testing",
    "numpy.ctypeslib",
    "numpy.lib.format",
    "numpy.lib._npyio_impl",
    "numpy.lib._datasource",
    "numpy.lib.npyio",
    "numpy._pytesttester",
    "scipy.io",
    "scipy._lib._testutils",
    "scipy.sparse._matrix_io",
    "scipy.datasets",
    "sklearn.datasets",
    "sklearn.utils._testing",
    "sklearn.externals",
    "sklearn._build_utils",
    "numpy.ma.mrecords",
    "scipy._lib._ccallback",
    "scipy._build_utils",
)
REFUSED_NUMPY_NAMES = (
    "load",
    "save",
    "savez",
    "savez_compressed",
    "savetxt",
    "loadtxt",
    "genfromtxt",
    "fromfile",
    "fromregex",
    "memmap",
    "DataSource",
)

# The reasons here reach users: they say what was found, not how the scanner works.
JOBLIB_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"


class ScanError(Exception):
    """The artifact is refused; the message says why in words a person understands."""


@dataclass
class ScanReport:
    format: str
    globals: set[str] = field(default_factory=set)
    untrusted_types: list[str] = field(default_factory=list)
    container: str = "none"
    arrays: int = 0
    opcodes: int = 0
    expanded_bytes: int = 0


def trusted_modules() -> list[str]:
    return [m.strip() for m in settings.MLPLATFORM_TRUSTED_MODULES if m.strip()]


def _in_package(module: str, packages: tuple[str, ...] | list[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


# Callables that change process-wide state (the serving process loads ready models in itself).
REFUSED_STATE_CHANGERS = (
    "sklearn.set_config",
    "sklearn.config_context",
    "numpy.seterr",
    "numpy.seterrcall",
    "numpy.setbufsize",
    "numpy.set_printoptions",
    "numpy.random.seed",
    "numpy.rec.fromfile",
)


def _refused_objects() -> set[int]:
    refused = set()
    for name in REFUSED_NUMPY_NAMES:
        obj = getattr(np, name, None)
        if obj is not None:
            refused.add(id(obj))
    for dotted in REFUSED_STATE_CHANGERS:
        module, _, attr = dotted.rpartition(".")
        try:
            refused.add(id(getattr(importlib.import_module(module), attr)))
        except (ImportError, AttributeError):
            continue
    return refused


def global_refusal(module: str, name: str) -> str | None:
    """Why `module.name` may not be imported by an artifact, or None if it may."""
    dotted = f"{module}.{name}"
    if dotted in ALLOWED_NAMES:
        return None
    trusted = trusted_modules()
    if _in_package(module, trusted):
        return None
    if not _in_package(module, ALLOWED_PACKAGES):
        return f"it imports {dotted}, which is not on the allowlist"
    if _in_package(module, REFUSED_MODULE_PREFIXES):
        return f"it imports {dotted}, which reads or writes files or loads code"
    # Resolve the name: `sklearn.utils` + "os.system" is an allowed module but a forbidden object.
    try:
        obj: Any = importlib.import_module(module)
        for part in name.split("."):
            if part.startswith("__") and part.endswith("__"):
                return f"it reaches the special attribute {part} through {dotted}"
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        return f"it imports {dotted}, which does not exist here ({exc})"
    if isinstance(obj, types.ModuleType):
        return f"it imports the module {dotted} as an object"
    owner = getattr(obj, "__module__", None)
    if not isinstance(owner, str):
        return f"it imports {dotted}, which is not a class or function"
    if not (_in_package(owner, ALLOWED_PACKAGES) or _in_package(owner, trusted)):
        return f"it imports {dotted}, which really is {owner}.{getattr(obj, '__name__', '?')}"
    if _in_package(owner, REFUSED_MODULE_PREFIXES) or id(obj) in _refused_objects():
        return (
            f"it imports {dotted}, which reads or writes files, loads code "
            "or changes process-wide settings"
        )
    if not (inspect.isclass(obj) or callable(obj)):
        return f"it imports {dotted}, which is not a class or function"
    return None


# --- the symbolic pickle machine -----------------------------------------------------------------


@dataclass(eq=False)
class _Global:
    name: str


@dataclass(eq=False)
class _Obj:
    cls: _Global
    args: tuple
    state: Any = None


class _Opaque:
    """A value the scan does not model (an array, a set, an object's items)."""


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ScanError(message)


class _Walker:
    def __init__(self, stream: IO[bytes], *, joblib_arrays: bool, report: ScanReport) -> None:
        self.stream = stream
        self.joblib_arrays = joblib_arrays
        self.report = report

    def _check_global(self, module: str, name: str) -> _Global:
        dotted = f"{module}.{name}"
        self.report.globals.add(dotted)
        reason = global_refusal(module, name)
        if reason:
            raise ScanError(f"Refused: {reason}.")
        return _Global(dotted)

    def walk(self, depth: int = 0) -> None:
        """Walk one pickle up to its STOP."""
        _expect(depth < 4, "Refused: pickles nested too deeply.")
        stack: list[Any] = []
        metastack: list[list[Any]] = []
        memo: dict[int, Any] = {}

        def pop_mark() -> list[Any]:
            nonlocal stack
            _expect(bool(metastack), "Refused: malformed pickle (MARK missing).")
            items = stack
            stack = metastack.pop()
            return items

        def pop() -> Any:
            _expect(bool(stack), "Refused: malformed pickle (empty stack).")
            return stack.pop()

        try:
            ops = pickletools.genops(self.stream)
            for opcode, arg, _pos in ops:
                self.report.opcodes += 1
                op = opcode.name
                if op in ("PROTO", "FRAME"):
                    continue
                if op == "STOP":
                    _expect(len(stack) == 1 and not metastack, "Refused: malformed pickle.")
                    return
                if op in _LITERALS:
                    stack.append(arg)
                elif op == "NONE":
                    stack.append(None)
                elif op in ("NEWTRUE", "NEWFALSE"):
                    stack.append(op == "NEWTRUE")
                elif op == "EMPTY_TUPLE":
                    stack.append(())
                elif op == "EMPTY_LIST":
                    stack.append([])
                elif op == "EMPTY_DICT":
                    stack.append({})
                elif op == "EMPTY_SET":
                    stack.append(_Opaque())
                elif op == "MARK":
                    metastack.append(stack)
                    stack = []
                elif op == "TUPLE":
                    items = pop_mark()  # rebinds `stack`: pop before appending
                    stack.append(tuple(items))
                elif op in ("TUPLE1", "TUPLE2", "TUPLE3"):
                    n = int(op[-1])
                    _expect(len(stack) >= n, "Refused: malformed pickle (short tuple).")
                    packed = tuple(stack[-n:])
                    del stack[-n:]
                    stack.append(packed)
                elif op == "LIST":
                    items = pop_mark()
                    stack.append(list(items))
                elif op == "DICT":
                    items = pop_mark()
                    stack.append(dict(zip(items[::2], items[1::2], strict=True)))
                elif op == "FROZENSET":
                    pop_mark()
                    stack.append(_Opaque())
                elif op == "APPEND":
                    value = pop()
                    _expect(bool(stack), "Refused: malformed pickle.")
                    if isinstance(stack[-1], list):
                        stack[-1].append(value)
                elif op == "APPENDS":
                    items = pop_mark()
                    _expect(bool(stack), "Refused: malformed pickle.")
                    if isinstance(stack[-1], list):
                        stack[-1].extend(items)
                elif op == "SETITEM":
                    value, key = pop(), pop()
                    _expect(bool(stack), "Refused: malformed pickle.")
                    if isinstance(stack[-1], dict):
                        stack[-1][key] = value
                elif op == "SETITEMS":
                    items = pop_mark()
                    _expect(bool(stack), "Refused: malformed pickle.")
                    if isinstance(stack[-1], dict):
                        stack[-1].update(zip(items[::2], items[1::2], strict=True))
                elif op == "ADDITEMS":
                    pop_mark()
                elif op == "POP":
                    if stack:
                        stack.pop()
                    else:
                        pop_mark()
                elif op == "POP_MARK":
                    pop_mark()
                elif op == "DUP":
                    _expect(bool(stack), "Refused: malformed pickle.")
                    stack.append(stack[-1])
                elif op in ("PUT", "BINPUT", "LONG_BINPUT"):
                    _expect(bool(stack), "Refused: malformed pickle.")
                    memo[int(str(arg))] = stack[-1]
                elif op == "MEMOIZE":
                    _expect(bool(stack), "Refused: malformed pickle.")
                    memo[len(memo)] = stack[-1]
                elif op in ("GET", "BINGET", "LONG_BINGET"):
                    key = int(str(arg))
                    _expect(key in memo, "Refused: malformed pickle (unknown memo key).")
                    stack.append(memo[key])
                elif op == "GLOBAL":
                    module, _, name = str(arg).partition(" ")
                    stack.append(self._check_global(module, name))
                elif op == "STACK_GLOBAL":
                    name, module = pop(), pop()
                    _expect(
                        isinstance(module, str) and isinstance(name, str),
                        "Refused: a global is named by something other than text.",
                    )
                    stack.append(self._check_global(module, name))
                elif op == "INST":
                    module, _, name = str(arg).partition(" ")
                    cls = self._check_global(module, name)
                    items = pop_mark()
                    stack.append(_Obj(cls, tuple(items)))
                elif op == "OBJ":
                    items = pop_mark()
                    _expect(bool(items) and isinstance(items[0], _Global), _CALL_MESSAGE)
                    stack.append(_Obj(items[0], tuple(items[1:])))
                elif op == "REDUCE":
                    args, func = pop(), pop()
                    # Only imported, checked globals may be called: no getattr(…)(…) chains.
                    _expect(isinstance(func, _Global), _CALL_MESSAGE)
                    stack.append(_Obj(func, args if isinstance(args, tuple) else ()))
                elif op == "NEWOBJ":
                    args, cls = pop(), pop()
                    _expect(isinstance(cls, _Global), _CALL_MESSAGE)
                    stack.append(_Obj(cls, args if isinstance(args, tuple) else ()))
                elif op == "NEWOBJ_EX":
                    _kwargs, args, cls = pop(), pop(), pop()
                    _expect(isinstance(cls, _Global), _CALL_MESSAGE)
                    stack.append(_Obj(cls, args if isinstance(args, tuple) else ()))
                elif op == "BUILD":
                    state = pop()
                    _expect(
                        bool(stack) and isinstance(stack[-1], _Obj),
                        "Refused: the pickle sets attributes on something it did not create.",
                    )
                    target: _Obj = stack[-1]
                    target.state = state
                    if self.joblib_arrays and _wrapper_class(target) == JOBLIB_WRAPPER:
                        self._skip_array(target, depth)
                        stack[-1] = _Opaque()
                else:
                    # PERSID, BINPERSID, EXT1/2/4, NEXT_BUFFER, READONLY_BUFFER: never written by
                    # joblib or pickle.dump to a file; each can reach objects the scan cannot see.
                    raise ScanError(f"Refused: the pickle uses the {op} opcode.")
        except ScanError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
            raise ScanError(f"Refused: not a readable pickle ({exc}).") from exc
        raise ScanError("Refused: the pickle ends before its STOP opcode (truncated file).")

    def _skip_array(self, wrapper: _Obj, depth: int) -> None:
        """Step over the array bytes joblib writes right after a NumpyArrayWrapper."""
        state = wrapper.state
        _expect(isinstance(state, dict), "Refused: malformed joblib array header.")
        shape, dtype = state.get("shape"), state.get("dtype")
        _expect(
            isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape),
            "Refused: malformed joblib array shape.",
        )
        _expect(isinstance(dtype, _Obj) and bool(dtype.args), "Refused: malformed array dtype.")
        self.report.arrays += 1
        descr = dtype.args[0]
        dstate = dtype.state if isinstance(dtype.state, tuple) else ()
        flags = dstate[-1] if dstate and isinstance(dstate[-1], int) else 0
        if (isinstance(descr, str) and descr.startswith("O")) or flags & 1:
            # Object arrays are a nested pickle (joblib/numpy_pickle.py write_array).
            self.walk(depth + 1)
            return
        if "numpy_array_alignment_bytes" in state:
            padding = self.stream.read(1)
            _expect(len(padding) == 1, "Refused: the joblib file is truncated.")
            self._skip(int.from_bytes(padding, "little"))
        elsize = dstate[5] if len(dstate) > 5 and isinstance(dstate[5], int) else -1
        itemsize = elsize if elsize > 0 else np.dtype(descr).itemsize
        count = 1
        for n in shape:
            count *= n
        self._skip(count * itemsize)

    def _skip(self, nbytes: int) -> None:
        start = self.stream.tell()
        self.stream.seek(0, io.SEEK_END)
        end = self.stream.tell()
        _expect(start + nbytes <= end, "Refused: the joblib file is truncated.")
        self.stream.seek(start + nbytes)


_CALL_MESSAGE = "Refused: the pickle calls something that is not an allowed class or function."
_LITERALS = frozenset(
    {
        "INT",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG",
        "LONG1",
        "LONG4",
        "FLOAT",
        "BINFLOAT",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "UNICODE",
        "BINUNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE8",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
        "BYTEARRAY8",
    }
)


def _wrapper_class(obj: _Obj) -> str:
    if obj.cls.name == "copyreg._reconstructor" and obj.args and isinstance(obj.args[0], _Global):
        return obj.args[0].name
    return obj.cls.name


# --- containers --------------------------------------------------------------------------------


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


def _max_expanded_bytes() -> int:
    return int(settings.MLPLATFORM_MAX_EXPANDED_BYTES)


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


def _expand(container: str, raw: IO[bytes], report: ScanReport) -> IO[bytes]:
    """Decompress into a temporary file, refusing past the expansion cap (zip/zlib bombs)."""
    limit = _max_expanded_bytes()
    out = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the caller
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
                    f"Refused: the {container}-compressed file expands past {limit} bytes "
                    "(MLPLATFORM_MAX_EXPANDED_BYTES)."
                )
            out.write(block)
    except ScanError:
        out.close()
        raise
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, RuntimeError) as exc:
        out.close()
        raise ScanError(f"Refused: the {container}-compressed file is corrupt ({exc}).") from exc
    report.expanded_bytes = total
    out.seek(0)
    return out


class _Bounded(io.RawIOBase):
    """A seekable file whose reads never ask for more than what is left.

    A hostile opcode can declare a length of 2**60 bytes; reading that from a plain file would
    try to allocate it. Here the read comes back short and the walker reports a truncated file.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        raw.seek(0, io.SEEK_END)
        self.size = raw.tell()
        raw.seek(0)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        left = self.size - self.raw.tell()
        return self.raw.read(left if size < 0 else min(size, max(left, 0)))

    def tell(self) -> int:
        return self.raw.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)


def _walk_pickle_file(stream: IO[bytes], *, joblib_arrays: bool, report: ScanReport) -> None:
    head = stream.read(2)
    stream.seek(0)
    _expect(len(head) == 2 and sniff(head) == "pickle", "Refused: not a pickle (protocol 2-5).")
    bounded: Any = _Bounded(stream)
    _Walker(bounded, joblib_arrays=joblib_arrays, report=report).walk()


# --- skops -------------------------------------------------------------------------------------

MAX_ZIP_ENTRIES = 100_000
MAX_ZIP_RATIO = 500
# skops reads schema.json whole into memory; real ones are kilobytes to a few megabytes.
MAX_SKOPS_SCHEMA_BYTES = 64 * 1024 * 1024


def _check_zip(path: Path) -> None:
    limit = _max_expanded_bytes()
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
        f"Refused: the skops file expands to {total} bytes, past {limit} "
        "(MLPLATFORM_MAX_EXPANDED_BYTES).",
    )
    schema = next((info for info in infos if info.filename == "schema.json"), None)
    _expect(schema is not None, "Refused: a zip file, but not a skops file.")
    _expect(
        schema is not None and schema.file_size <= MAX_SKOPS_SCHEMA_BYTES,
        "Refused: the skops schema is larger than any model needs.",
    )


def skops_untrusted_types(path: Path) -> list[str]:
    """The types a skops file needs beyond skops' defaults (zip bomb checked first)."""
    import skops.io as sio

    _check_zip(path)
    try:
        return list(sio.get_untrusted_types(file=path))
    except Exception as exc:
        raise ScanError(f"Refused: skops could not read the file ({exc}).") from exc


# --- entry point -------------------------------------------------------------------------------


def artifact_scan(*, path: Path, fmt: str) -> ScanReport:
    """Scan a local artifact file of the given format; raises ScanError with the reason."""
    report = ScanReport(format=fmt)
    with path.open("rb") as raw:
        head = raw.read(8)
    container = sniff(head)
    if fmt == "skops":
        _expect(container == "zip", "Refused: a .skops file must be a zip archive.")
        report.container = "zip"
        report.untrusted_types = skops_untrusted_types(path)
        for dotted in report.untrusted_types:
            module, _, name = dotted.rpartition(".")
            reason = global_refusal(module, name) if module else "it names no module"
            if reason:
                raise ScanError(f"Refused: {reason}.")
            report.globals.add(dotted)
        return report
    if fmt not in ("joblib", "pickle"):
        raise ScanError(f"Refused: unknown format {fmt!r}.")
    _expect(container is not None and container != "zip", container_problem(head))
    with path.open("rb") as raw:
        if container == "pickle":
            _walk_pickle_file(raw, joblib_arrays=fmt == "joblib", report=report)
            return report
        _expect(fmt == "joblib", "Refused: a compressed file must be uploaded as .joblib.")
        report.container = str(container)
        with _expand(str(container), raw, report) as expanded:
            _walk_pickle_file(expanded, joblib_arrays=True, report=report)
    return report


def container_problem(head: bytes) -> str:
    if not head:
        return "Refused: the file is empty."
    if head.startswith(b"ZF"):
        return "Refused: joblib files from before joblib 0.9.3 are not supported; re-save it."
    if head.startswith(PICKLE_MAGIC) or head[:1] in (b"(", b"c", b"]", b"}"):
        return "Refused: pickle protocols 0 and 1 are not accepted; save with protocol 2-5."
    return "Refused: the file is not a pickle, a joblib file or a skops file."
