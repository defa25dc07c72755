"""Confinement of a child process that loads an untrusted model artifact.

Loading a pickle runs code chosen by whoever uploaded it, so every process that opens one is
confined before it does: a scrubbed environment, a scratch directory as its working directory,
an unprivileged user where the platform runs as root (or, when that user cannot run the
interpreter, uid 0 with every capability dropped), resource limits, Landlock (reads only from
the scratch directory and what Python and its libraries need, no writes anywhere) and a seccomp
filter (no new processes, no sockets, no file-system changes, no way to reach other processes).
The parent enforces wall-clock time.

Parent side: `child_env`, `demotion` and `available` (a cached probe). Child side: `confine`,
called before the artifact is opened. This module imports no Django: it runs in those children.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import pwd
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Only these variables reach the child: enough to run Python, with BLAS kept single-threaded.
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
FIXED_ENV = {
    "HOME": "/nonexistent",  # confine() points it at the scratch directory
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
}
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
DEMOTE_USER = "nobody"
PROBE_TIMEOUT_SECONDS = 30.0
PROBE_MEMORY_MB = 512

# Read-only paths outside the Python installation that the interpreter and numpy, scipy,
# scikit-learn, skops, skl2onnx, onnx and onnxruntime read while importing and predicting
# (found by tracing those libraries). A path that does not exist is left out.
SYSTEM_READABLE = (
    "/etc/ld.so.cache",  # the dynamic loader, for libraries loaded by a lazy import
    "/etc/localtime",
    "/usr/share/zoneinfo",
    "/usr/lib/locale",
    "/dev/null",
    "/dev/urandom",
    "/dev/zero",
    "/proc/cpuinfo",  # CPU feature and core-count detection
    "/proc/stat",
    "/proc/meminfo",
    "/proc/sys/vm/overcommit_memory",
    "/sys/devices/system/cpu",
    "/sys/kernel/mm/transparent_hugepage",  # numpy decides on huge pages at import
)
# Directories that hold the system's shared libraries. Their contents are public.
LIBRARY_DIRS = ("/lib64", "/usr/lib64")

# --- seccomp policy ------------------------------------------------------------------------------
# A deny list over an allowing default: the libraries make many ordinary calls (threads, futexes,
# mmap, reads and writes on open descriptors) that must keep working, while the calls below are
# the ways out. Names the running libseccomp does not know are skipped and recorded.
DENY_PROCESS = ("execve", "execveat", "fork", "vfork")
DENY_NETWORK = ("socket", "socketpair", "connect", "bind", "listen", "accept", "accept4")
DENY_FILESYSTEM = (
    "creat",
    "openat2",  # cannot be filtered on its flags (they sit behind a pointer)
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "mkdir",
    "mkdirat",
    "rmdir",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "mknod",
    "mknodat",
    "truncate",
    "utime",
    "utimes",
    "futimesat",
    "utimensat",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "setxattrat",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "removexattrat",
    "memfd_create",
    "memfd_secret",
    "name_to_handle_at",
    "open_by_handle_at",
    "fanotify_init",
    "fanotify_mark",
    "acct",
    "swapon",
    "swapoff",
    "quotactl",
    "quotactl_fd",
    "file_setattr",
)
DENY_ESCAPE = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_open",
    "pidfd_getfd",
    "pidfd_send_signal",
    "tkill",
    "get_robust_list",
    "migrate_pages",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "move_mount",
    "open_tree",
    "open_tree_attr",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "bpf",
    "perf_event_open",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "personality",
    "userfaultfd",
    "iopl",
    "ioperm",
    "modify_ldt",
    "uselib",
    "lookup_dcookie",
    "vhangup",
    "reboot",
    "syslog",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "setrlimit",
    # System V and POSIX IPC could reach shared memory or queues of other processes of the
    # same user (uid 0 when demotion is impossible).
    "shmget",
    "shmat",
    "shmctl",
    "shmdt",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
)
DENY_IDENTITY = (
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setfsuid",
    "setfsgid",
    "setgroups",
    "capset",
)
DENY_ALWAYS = DENY_PROCESS + DENY_NETWORK + DENY_FILESYSTEM + DENY_ESCAPE + DENY_IDENTITY
# Calls that an older libseccomp cannot name, by their number in the table every architecture
# has shared since Linux 5.1 (an architecture's offset is found from pidfd_open, number 434).
NEWER_SYSCALLS = {
    "fchmodat2": 452,
    "setxattrat": 463,
    "removexattrat": 466,
    "open_tree_attr": 467,
    "file_setattr": 469,
}
PIDFD_OPEN = 434
# A deny list cannot know calls added after it was written: numbers above the last one reviewed
# fail with ENOSYS, as on an older kernel, and libc falls back to an older call.
LAST_REVIEWED_SYSCALL = 469
FUTURE_SYSCALLS_END = 600
# Opening with any of these flags could write, create or truncate; reading stays allowed.
WRITE_OPEN_FLAGS = (os.O_WRONLY, os.O_RDWR, os.O_CREAT, os.O_TRUNC, os.O_APPEND)
CLONE_THREAD = 0x00010000
CLONE_NAMESPACES = (
    0x00000080,  # CLONE_NEWTIME
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)
F_SETOWN = 8  # would aim SIGIO at another process
F_SETOWN_EX = 15
TIOCSTI = 0x5412  # pushes keystrokes into a terminal the parent may be reading
TIOCLINUX = 0x541C

# --- capabilities and Landlock constants -------------------------------------------------------
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
# noroot, no-setuid-fixup, keep-caps and no-ambient-raise, each set (where meaningful) and locked:
# an exec could not hand capabilities back even if one were allowed.
SECURE_BITS = 0b11101111
LINUX_CAPABILITY_VERSION_3 = 0x20080522
LANDLOCK_CREATE_RULESET = 444
LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_NET_BIND_TCP = 1 << 0
LANDLOCK_NET_CONNECT_TCP = 1 << 1
LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
LANDLOCK_SCOPE_SIGNAL = 1 << 1

# Keeps the /proc entries allowed to Landlock pinned: procfs makes a new inode when an entry is
# looked up again after its dentry was dropped, and a rule is tied to the inode it was made on.
_pinned: list[int] = []


class ConfinementError(Exception):
    """The child could not be confined as required; the message is for people."""


@dataclass(frozen=True)
class Profile:
    """What one confined child may use."""

    scratch: Path  # cwd of the child; readable; holds the artifact copy
    memory_mb: int  # RLIMIT_AS
    cpu_seconds: int | None  # RLIMIT_CPU; None for long-lived runners
    max_file_bytes: int = 0  # RLIMIT_FSIZE; 0: no regular file grows, a pre-opened one included
    max_open_files: int = 256  # RLIMIT_NOFILE
    readable: tuple[Path, ...] = ()  # extra read-only paths, if a caller needs any


# --- parent side ---------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    """The whole environment of a confined child: no database or broker URL, no secret."""
    env = {key: os.environ[key] for key in PASSED_ENV if key in os.environ}
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(FIXED_ENV)
    return env


def demotion() -> dict[str, Any]:
    """Keyword arguments for subprocess.Popen/run that start the child as the unprivileged user."""
    user = available()["demote_user"]
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


@functools.cache
def available() -> dict[str, Any]:
    """What confinement this machine gives, found once by confining a probe child."""
    if not _is_root():
        record, problem = _probe({})
        reason = "the platform does not run as root: there is nothing to demote"
        return _availability(record, problem, demote_user=None, reason=reason)
    try:
        entry = pwd.getpwnam(DEMOTE_USER)
    except KeyError:
        record, problem = _probe({})
        reason = (
            f"the platform runs as root but there is no user {DEMOTE_USER!r}: children stay "
            "uid 0 with every capability dropped"
        )
        return _availability(record, problem, demote_user=None, reason=reason)
    kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    record, problem = _probe(kwargs)
    if record is not None:
        reason = f"the platform runs as root: children run as {DEMOTE_USER}"
        return _availability(record, problem, demote_user=DEMOTE_USER, reason=reason)
    record, root_problem = _probe({})
    reason = (
        f"the platform runs as root but {DEMOTE_USER} cannot run {sys.executable} or read the "
        f"project's code ({problem}): children stay uid 0 with every capability dropped"
    )
    return _availability(record, root_problem, demote_user=None, reason=reason)


def _availability(
    record: dict[str, Any] | None, problem: str, *, demote_user: str | None, reason: str
) -> dict[str, Any]:
    if record is None:
        return {
            "seccomp": False,
            "landlock_abi": 0,
            "demote_user": demote_user,
            "reason": f"{reason}; the confinement probe failed: {problem}",
        }
    missing = record.get("missing") or []
    if missing:
        reason = f"{reason}; missing: {'; '.join(missing)}"
    return {
        "seccomp": bool(record.get("seccomp")),
        "landlock_abi": int(record.get("landlock_abi", 0)),
        "demote_user": demote_user,
        "reason": reason,
    }


def _probe(kwargs: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """Confine a throw-away child and return its record, or None and what went wrong."""
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(_project_root())!r})\n"
        "from pathlib import Path\n"
        "from registry.confinement import Profile, confine\n"
        f"record = confine(Profile(scratch=Path.cwd(), memory_mb={PROBE_MEMORY_MB}, "
        "cpu_seconds=10), allow_unsafe=True)\n"
        "print(json.dumps(record))\n"
    )
    scratch = Path(tempfile.mkdtemp(prefix="mlplatform-probe-"))
    try:
        if "user" in kwargs:
            os.chown(scratch, kwargs["user"], kwargs["group"])
        completed = subprocess.run(  # noqa: S603 - this interpreter and fixed code, no shell
            [sys.executable, "-E", "-s", "-B", "-c", code],
            cwd=scratch,
            env=child_env(),
            capture_output=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            check=False,
            **kwargs,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    lines = completed.stdout.decode(errors="replace").strip().splitlines()
    if completed.returncode != 0 or not lines:
        stderr = completed.stderr.decode(errors="replace").strip().splitlines()
        return None, f"exit {completed.returncode}: {stderr[-1] if stderr else 'no output'}"
    record: dict[str, Any] = json.loads(lines[-1])
    return record, ""


def _project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _is_root() -> bool:
    return 0 in os.getresuid()


# --- child side ----------------------------------------------------------------------------------


def confine(profile: Profile, *, allow_unsafe: bool = False) -> dict[str, Any]:
    """Confine this process for good before it opens an untrusted file; returns what is active.

    Call it while the process has a single thread: Landlock and the capability drop apply to the
    calling thread and to threads started after it.

    Raises:
        ConfinementError: the process has other threads, or seccomp cannot be installed and
            allow_unsafe is false (with allow_unsafe, what is missing is listed under "missing").
    """
    threads = _thread_count()
    if threads != 1:
        raise ConfinementError(
            f"confine() must run before any thread starts; this process has {threads}."
        )
    scratch = profile.scratch.resolve()
    # Loading pyseccomp looks libseccomp up with ldconfig: a subprocess and a temporary file,
    # both impossible once confined.
    seccomp_module, seccomp_import_problem = _import_seccomp()
    os.chdir(scratch)
    os.environ["HOME"] = str(scratch)
    missing: list[str] = []
    record: dict[str, Any] = {"env": _scrub_env()}
    record["rlimits"] = _limit(profile)
    record["user"] = _drop_privileges()
    if not _no_new_privs():
        missing.append("no_new_privs")
    abi, landlock_problem = _landlock(scratch, profile.readable)
    record["landlock_abi"] = abi
    if landlock_problem:
        missing.append(f"landlock: {landlock_problem}")
    unknown, seccomp_problem = _seccomp(seccomp_module, seccomp_import_problem)
    record["seccomp"] = not seccomp_problem
    if seccomp_problem:
        missing.append(f"seccomp: {seccomp_problem}")
        if not allow_unsafe:
            raise ConfinementError(
                f"seccomp could not be installed ({seccomp_problem}); untrusted artifacts are "
                "refused unless MLPLATFORM_UNSAFE_SANDBOX=1."
            )
    elif unknown:
        record["seccomp_unknown_syscalls"] = unknown
    if record["seccomp"]:
        record["network"] = "denied"
    elif abi >= 4:
        record["network"] = "TCP denied, other sockets allowed"
    else:
        record["network"] = "allowed"
    record["processes"] = "denied" if record["seccomp"] else "allowed"
    record["signals"] = "own process only" if record["seccomp"] or abi >= 6 else "allowed"
    record["writes"] = "denied" if record["seccomp"] or abi else "allowed"
    record["reads"] = "scratch and the Python runtime" if abi else "unrestricted"
    record["missing"] = missing
    return record


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def _scrub_env() -> str:
    """Drop anything the parent should not have passed, and say whether there was any."""
    # Python itself sets LC_CTYPE when it coerces the C locale to UTF-8 at start-up.
    allowed = set(PASSED_ENV) | set(FIXED_ENV) | {"LC_CTYPE"}
    extra = sorted(key for key in os.environ if key not in allowed)
    for key in extra:
        del os.environ[key]  # also unsets it for libraries that call getenv()
    if extra:
        return f"scrubbed in the child (it was given {', '.join(extra)})"
    return "scrubbed"


def _limit(profile: Profile) -> dict[str, int | None]:
    """Set each limit with soft and hard values, so that the child cannot raise it back."""
    memory = profile.memory_mb * 1024 * 1024
    wanted: dict[str, tuple[int, int]] = {
        "RLIMIT_AS": (memory, memory),
        "RLIMIT_FSIZE": (profile.max_file_bytes, profile.max_file_bytes),
        "RLIMIT_NOFILE": (profile.max_open_files, profile.max_open_files),
        "RLIMIT_CORE": (0, 0),
    }
    if profile.cpu_seconds is not None:
        # SIGXCPU at the soft limit names the cause; SIGKILL a second later if it is caught.
        wanted["RLIMIT_CPU"] = (profile.cpu_seconds, profile.cpu_seconds + 1)
    recorded: dict[str, int | None] = {"RLIMIT_CPU": None}
    for name, (soft, hard) in wanted.items():
        kind = getattr(resource, name)
        _, current = resource.getrlimit(kind)
        if current != resource.RLIM_INFINITY:
            # Never above what the parent already had: raising needs a capability.
            soft, hard = min(soft, current), min(hard, current)
        resource.setrlimit(kind, (soft, hard))
        recorded[name] = soft
    return recorded


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, arg: int = 0) -> None:
    if _libc().prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl({option}): {os.strerror(code)}")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _drop_privileges() -> str:
    """Name who the child runs as; as root, first drop every capability for good."""
    uid = os.getuid()
    if not _is_root():
        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return f"uid {uid}"
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    with contextlib.suppress(OSError):
        # A second lock on exec, which seccomp denies anyway; needs CAP_SETPCAP.
        _prctl(PR_SET_SECUREBITS, SECURE_BITS)
    bounding_dropped = True
    for cap in range(last + 1):
        try:
            _prctl(PR_CAPBSET_DROP, cap)
        except OSError as exc:
            if exc.errno != errno.EPERM:
                raise ConfinementError(f"could not drop capability {cap}: {exc}") from exc
            bounding_dropped = False  # no CAP_SETPCAP: the bounding set stays as it is
            break
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()  # all zero: no effective, permitted or inheritable capability
    if _libc().capset(ctypes.byref(header), data) != 0:
        code = ctypes.get_errno()
        raise ConfinementError(f"could not drop capabilities: {os.strerror(code)}")
    left = {
        name: value
        for name, value in _capabilities().items()
        if value and (bounding_dropped or name != "CapBnd")
    }
    if left:
        raise ConfinementError(f"capabilities remain after dropping them: {left}")
    if not bounding_dropped:
        return "root without capabilities (bounding set kept: no CAP_SETPCAP)"
    return "root without capabilities"


def _capabilities() -> dict[str, int]:
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:")):
            key, value = line.split(":", 1)
            found[key] = int(value, 16)
    return found


def _no_new_privs() -> bool:
    try:
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
    except OSError:
        return False
    return True


def _readable_paths(scratch: Path, extra: tuple[Path, ...]) -> list[Path]:
    """Everything the confined child may read: scratch, the Python runtime and system files."""
    project = _project_root()
    prefixes = [Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()]
    runtime = {Path(path) for key, path in sysconfig.get_paths().items() if "stdlib" in key}
    runtime.update(Path(sysconfig.get_paths()[key]) for key in ("purelib", "platlib"))
    # site-packages and lib-dynload, and what .pth files add inside the installation; not the
    # script's directory or the working directory the child was started in.
    runtime.update(
        Path(entry)
        for entry in sys.path
        if entry and any(Path(entry).resolve().is_relative_to(prefix) for prefix in prefixes)
    )
    system = {Path(name) for name in (*SYSTEM_READABLE, *LIBRARY_DIRS)}
    multiarch = getattr(sys.implementation, "_multiarch", "")
    if multiarch:
        system.update({Path("/lib") / multiarch, Path("/usr/lib") / multiarch})
    system.update(_mapped_library_dirs())
    paths = {path.resolve() for path in runtime | system if path.exists()}
    # Never the project directory itself or anything above it: it holds the database, media
    # and settings. Its `registry` package is added on its own below.
    paths = {path for path in paths if not project.is_relative_to(path)}
    paths.update({scratch, Path(__file__).resolve().parent, Path(f"/proc/{os.getpid()}")})
    # An extra path that does not exist has nothing to read; asking Landlock for it would fail.
    paths.update(path.resolve() for path in extra if path.exists())
    return sorted(paths)


def _mapped_library_dirs() -> set[Path]:
    """Directories of the shared objects already loaded, wherever the system keeps them."""
    dirs: set[Path] = set()
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return dirs
    for line in maps.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5].startswith("/") and ".so" in parts[5]:
            dirs.add(Path(parts[5]).parent)
    return dirs


def _landlock(scratch: Path, extra: tuple[Path, ...]) -> tuple[int, str]:
    """Allow reads of the runtime and scratch only, and no writes; return (ABI, problem)."""
    try:
        from landlock import FSAccess, Ruleset, landlock_abi_version
    except ImportError as exc:
        return 0, f"the landlock package is missing ({exc})"
    try:
        abi = int(landlock_abi_version())
    except OSError as exc:
        return 0, f"not supported by this kernel ({exc})"
    read_dir = FSAccess.READ_FILE | FSAccess.READ_DIR
    try:
        ruleset = Ruleset()  # handles every file-system right this ABI knows
        for path in _readable_paths(scratch, extra):
            if str(path).startswith("/proc/"):
                _pinned.append(os.open(path, os.O_PATH | os.O_CLOEXEC))
            ruleset.allow(path, rules=read_dir if path.is_dir() else FSAccess.READ_FILE)
        ruleset.apply()
    except OSError as exc:
        return 0, str(exc)
    try:
        _landlock_scope(abi)
    except OSError as exc:
        return abi, f"TCP rules and scopes: {exc}"
    return abi, ""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


def _landlock_scope(abi: int) -> None:
    """Add the rights the landlock package does not know: TCP (ABI 4) and scopes (ABI 6).

    With them, Landlock alone already denies TCP bind/connect, abstract UNIX sockets outside
    the sandbox and signals to processes outside it.
    """
    net = LANDLOCK_NET_BIND_TCP | LANDLOCK_NET_CONNECT_TCP if abi >= 4 else 0
    scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL if abi >= 6 else 0
    if not (net or scoped):
        return
    attr = _RulesetAttr(0, net, scoped)
    size = ctypes.sizeof(attr) if scoped else ctypes.sizeof(ctypes.c_uint64) * 2
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(
        ctypes.c_long(LANDLOCK_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(size), 0
    )
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"landlock_create_ruleset (scopes): {os.strerror(code)}")
    try:
        if libc.syscall(ctypes.c_long(LANDLOCK_RESTRICT_SELF), ctypes.c_int(fd), 0) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"landlock_restrict_self (scopes): {os.strerror(code)}")
    finally:
        os.close(fd)


def _import_seccomp() -> tuple[Any, str]:
    try:
        import pyseccomp
    except (ImportError, OSError) as exc:  # OSError: libseccomp itself is missing
        return None, f"pyseccomp or libseccomp is missing ({exc})"
    return pyseccomp, ""


def _seccomp(sc: Any, import_problem: str) -> tuple[list[str], str]:
    """Install the filter; return (syscall names libseccomp does not know, problem)."""
    if sc is None:
        return [], import_problem
    eperm = sc.ERRNO(errno.EPERM)
    unknown: list[str] = []
    scmp_error = -1  # what libseccomp answers for a name it does not know
    pidfd_open = sc.resolve_syscall(sc.Arch.NATIVE, "pidfd_open")
    offset = None if pidfd_open == scmp_error else pidfd_open - PIDFD_OPEN

    def deny(name: str, *args: Any, action: int = eperm) -> None:
        number = sc.resolve_syscall(sc.Arch.NATIVE, name)
        if number == scmp_error and name in NEWER_SYSCALLS and offset is not None:
            number = NEWER_SYSCALLS[name] + offset
        if number == scmp_error:
            if name not in unknown:
                unknown.append(name)
            return
        flt.add_rule(action, number, *args)

    pid = os.getpid()
    try:
        flt = sc.SyscallFilter(sc.ALLOW)
        # A call made through another ABI (i386 int 0x80, x32) would dodge the native rules.
        flt.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
        flt.set_attr(sc.Attr.CTL_TSYNC, 1)
        with contextlib.suppress(OSError):
            # A binary tree instead of a linear scan over the rules (libseccomp 2.5 and later).
            flt.set_attr(sc.Attr.CTL_OPTIMIZE, 2)
        for name in DENY_ALWAYS:
            deny(name)
        # clone3 passes its flags behind a pointer: ENOSYS makes libc fall back to clone,
        # whose flags can be checked. Threads (CLONE_THREAD) pass; new processes and new
        # namespaces do not.
        deny("clone3", action=sc.ERRNO(errno.ENOSYS))
        deny("clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
        for flag in CLONE_NAMESPACES:
            deny("clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
        for flag in WRITE_OPEN_FLAGS:
            deny("open", sc.Arg(1, sc.MASKED_EQ, flag, flag))
            deny("openat", sc.Arg(2, sc.MASKED_EQ, flag, flag))
        # Signals and scheduling changes only for this process.
        for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
            deny(name, sc.Arg(0, sc.NE, pid))
        for name in ("sched_setscheduler", "sched_setparam", "sched_setattr", "move_pages"):
            deny(name, sc.Arg(0, sc.NE, 0))
        for name in ("setpriority", "ioprio_set"):
            deny(name, sc.Arg(1, sc.NE, 0))
        deny("prlimit64", sc.Arg(2, sc.NE, 0))  # reading limits is fine, setting is not
        # The kernel reads these commands as 32-bit values: compare only those bits.
        for command in (F_SETOWN, F_SETOWN_EX):
            deny("fcntl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, command))
        for request in (TIOCSTI, TIOCLINUX):
            deny("ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
        if offset is not None:
            for number in range(LAST_REVIEWED_SYSCALL + 1, FUTURE_SYSCALLS_END):
                flt.add_rule(sc.ERRNO(errno.ENOSYS), number + offset)
        flt.load()
    except OSError as exc:
        return unknown, str(exc)
    return unknown, ""
