"""Confinement of the processes that load untrusted artifacts, attacked from inside.

Each test starts a real child the way the platform does (scrubbed environment, scratch directory
as cwd, the unprivileged user where there is one), lets it call confine() and then run what a
hostile pickle would run. The child reports each attempt as JSON; the parent checks that it
failed with the documented error and that nothing changed outside the child.
"""

import contextlib
import errno
import hashlib
import json
import os
import pickle
import platform
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from skl2onnx import to_onnx
from sklearn.ensemble import HistGradientBoostingClassifier

from registry.confinement import (
    FIXED_ENV,
    PASSED_ENV,
    available,
    child_env,
    demotion,
)

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "DJANGO_SECRET_KEY": "test-secret-key-that-must-not-leak",
    "DATABASE_URL": "postgres://admin:hunter2@db.internal:5432/prod",
    "CELERY_BROKER_URL": "redis://:broker-pass@broker.internal:6379/0",
    "AWS_ACCESS_KEY_ID": "AKIATESTTESTTESTTEST",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-that-must-not-leak",
}
RESULT = "RESULT "

# The start of every child: how it reports (one RESULT line of JSON on stdout) and its arguments.
PRELUDE = """
import errno, json, os, sys
ARGS = json.loads(sys.argv[1])
sys.path.insert(0, ARGS["root"])
from pathlib import Path
from registry.confinement import ConfinementError, Profile, confine
results = {}
report = {}

def attempt(name, action):
    try:
        value = action()
    except BaseException as exc:
        results[name] = {"raised": type(exc).__name__, "errno": getattr(exc, "errno", None),
                         "text": str(exc)[:300]}
    else:
        plain = isinstance(value, (bool, int, float, str, list, dict, type(None)))
        results[name] = {"returned": value if plain else repr(value)[:300]}

def emit(**extra):
    print("RESULT " + json.dumps({"results": results, **extra}, default=str), flush=True)
"""

CONFINE = """
record = confine(
    Profile(scratch=Path.cwd(), memory_mb=ARGS["memory_mb"], cpu_seconds=ARGS["cpu_seconds"],
            max_file_bytes=ARGS["max_file_bytes"]),
    allow_unsafe=ARGS["allow_unsafe"],
)
"""


@dataclass
class Box:
    """A directory tree the child must not change: its scratch directory and one beside it."""

    root: Path
    scratch: Path
    outside: Path
    secret: Path
    files: dict[str, Path] = field(default_factory=dict)


@dataclass
class Child:
    returncode: int
    results: dict[str, Any]
    record: dict[str, Any]
    extra: dict[str, Any]
    stderr: str


@pytest.fixture
def box() -> Iterator[Box]:
    # Not under pytest's tmp_path: its parents are private to root, and the child may run as an
    # unprivileged user that must reach scratch (the secret stays readable to it on purpose, so
    # that only confinement can stop the read).
    root = Path(tempfile.mkdtemp(prefix="mlplatform-confinement-"))
    root.chmod(0o755)
    scratch = root / "scratch"
    outside = root / "outside"
    for directory in (scratch, outside, scratch / "subdir", outside / "subdir"):
        directory.mkdir()
        directory.chmod(0o755)
    secret = outside / "settings.env"
    secret.write_text("DJANGO_SECRET_KEY=outside-secret\n")
    files = {}
    for place, directory in (("scratch", scratch), ("outside", outside)):
        target = directory / "victim.txt"
        target.write_text(f"original {place} content\n")
        with contextlib.suppress(OSError):  # where the file system has user attributes
            os.setxattr(target, "user.kept", b"1")
        files[place] = target
    for path in root.rglob("*"):
        if path.is_file():
            path.chmod(0o644)
    yield Box(root=root, scratch=scratch, outside=outside, secret=secret, files=files)
    shutil.rmtree(root, ignore_errors=True)


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Everything observable about a tree: kind, mode, owner, size, times and content."""
    state: dict[str, tuple[Any, ...]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        content = ""
        if path.is_symlink():
            content = os.readlink(path)
        elif path.is_file():
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        try:
            attributes = {name: os.getxattr(path, name) for name in os.listxattr(path)}
        except OSError:
            attributes = {}
        state[str(path.relative_to(root))] = (
            attributes,
            info.st_mode,
            info.st_uid,
            info.st_gid,
            info.st_size,
            info.st_mtime_ns,
            info.st_ctime_ns,
            content,
        )
    return state


def run_child(
    body: str,
    box: Box,
    *,
    before: str = "",
    confined: bool = True,
    memory_mb: int = 1024,
    cpu_seconds: int | None = 30,
    max_file_bytes: int = 0,
    allow_unsafe: bool = False,
    args: dict[str, Any] | None = None,
    pass_fds: tuple[int, ...] = (),
    timeout: float = 60,
) -> Child:
    """Start a child as the platform does, confine it (unless told not to) and run `body`."""
    code = PRELUDE + textwrap.dedent(before)
    code += CONFINE if confined else "record = {}\n"
    code += textwrap.dedent(body) + "\nemit(record=record, **report)\n"
    arguments = {
        "root": str(ROOT),
        "memory_mb": memory_mb,
        "cpu_seconds": cpu_seconds,
        "max_file_bytes": max_file_bytes,
        "allow_unsafe": allow_unsafe,
        "outside": str(box.outside),
        "secret": str(box.secret),
        "scratch_victim": str(box.files["scratch"]),
        "outside_victim": str(box.files["outside"]),
        **(args or {}),
    }
    completed = subprocess.run(
        [sys.executable, "-E", "-s", "-B", "-c", code, json.dumps(arguments)],
        cwd=box.scratch,
        env=child_env(),
        capture_output=True,
        timeout=timeout,
        pass_fds=pass_fds,
        check=False,
        **demotion(),
    )
    stdout = completed.stdout.decode(errors="replace")
    stderr = completed.stderr.decode(errors="replace")
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT):
            payload = json.loads(line[len(RESULT) :])
            return Child(
                returncode=completed.returncode,
                results=payload.pop("results"),
                record=payload.pop("record"),
                extra=payload,
                stderr=stderr,
            )
    return Child(returncode=completed.returncode, results={}, record={}, extra={}, stderr=stderr)


def assert_denied(child: Child, names: list[str], code: int = errno.EPERM) -> None:
    """Each attempt raised OSError with this errno: EPERM from seccomp, EACCES from Landlock."""
    assert child.results, f"the child reported nothing (exit {child.returncode}): {child.stderr}"
    for name in names:
        outcome = child.results[name]
        assert outcome.get("errno") == code, f"{name}: {outcome}"


# --- what the platform learns before it starts a child ----------------------------------------


def test_available_reports_seccomp_landlock_and_who_the_child_runs_as() -> None:
    found = available()

    # CI runs on Linux with seccomp and Landlock: their absence is a failure, never a skip.
    assert found["seccomp"] is True, found
    assert found["landlock_abi"] >= 1, found
    assert found["reason"]
    if os.geteuid() != 0:
        assert found["demote_user"] is None
        assert "nothing to demote" in found["reason"]
    elif found["demote_user"] is None:
        assert "capability dropped" in found["reason"], found
        assert demotion() == {}
    else:
        uid = pwd.getpwnam(found["demote_user"]).pw_uid
        assert demotion()["user"] == uid != 0
        assert demotion()["extra_groups"] == []


def test_child_env_passes_no_secret_and_keeps_blas_single_threaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LANG", "C.UTF-8")

    env = child_env()

    assert set(env) <= set(PASSED_ENV) | set(FIXED_ENV)
    assert not set(SECRETS) & set(env)
    assert not any(value in " ".join(env.values()) for value in SECRETS.values())
    assert env["LANG"] == "C.UTF-8"
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONHASHSEED"] == "0"


# --- the record --------------------------------------------------------------------------------


def test_confine_returns_the_protections_that_are_active(box: Box) -> None:
    child = run_child(
        """
        status = dict(line.split(":\\t", 1) for line in Path("/proc/self/status").read_text()
                      .splitlines() if ":\\t" in line)
        import resource
        limits = {name: resource.getrlimit(getattr(resource, name))
                  for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NOFILE")}
        report["status"] = {key: value.strip() for key, value in status.items()}
        report.update(limits=limits, cwd=os.getcwd(), home=os.environ["HOME"])
        """,
        box,
        memory_mb=900,
        cpu_seconds=20,
        max_file_bytes=4096,
    )
    found = available()

    record = child.record
    assert record["seccomp"] is True, child.stderr
    assert record["landlock_abi"] == found["landlock_abi"]
    assert record["env"] == "scrubbed"
    assert record["network"] == record["writes"] == record["processes"] == "denied"
    assert record["missing"] == []
    assert record["rlimits"] == {
        "RLIMIT_AS": 900 * 1024 * 1024,
        "RLIMIT_FSIZE": 4096,
        "RLIMIT_NOFILE": 256,
        "RLIMIT_CORE": 0,
        "RLIMIT_CPU": 20,
    }
    status = child.extra["status"]
    assert status["Seccomp"] == "2"  # filter mode
    assert status["NoNewPrivs"] == "1"
    assert child.extra["limits"]["RLIMIT_AS"] == [900 * 1024 * 1024] * 2
    assert child.extra["limits"]["RLIMIT_FSIZE"] == [4096, 4096]
    assert child.extra["limits"]["RLIMIT_CPU"] == [20, 21]
    assert Path(child.extra["cwd"]) == box.scratch.resolve()
    assert Path(child.extra["home"]) == box.scratch.resolve()
    capabilities = ["CapInh", "CapPrm", "CapEff", "CapAmb"]
    if found["demote_user"]:
        assert record["user"] == found["demote_user"]
        assert status["Uid"].split()[0] == str(pwd.getpwnam(found["demote_user"]).pw_uid)
    elif os.geteuid() == 0:
        assert record["user"] == "root without capabilities"
        assert status["Uid"].split()[0] == "0"
        capabilities.append("CapBnd")  # and none can come back through an exec
    assert {key: int(status[key], 16) for key in capabilities} == dict.fromkeys(capabilities, 0)


REFUSED = (
    "try:\n"
    + textwrap.indent(CONFINE, "    ")
    + "except ConfinementError as exc:\n"
    + "    report['refused'] = str(exc)\n"
)


def test_confine_refuses_without_seccomp_unless_unsafe_is_allowed(box: Box) -> None:
    hide_seccomp = 'sys.modules["pyseccomp"] = None  # as if pyseccomp were not installed\n'

    refused = run_child("", box, before=hide_seccomp + REFUSED, confined=False)
    unsafe = run_child(
        "attempt('read secret', lambda: open(ARGS['secret']).read())",
        box,
        before=hide_seccomp,
        allow_unsafe=True,
    )

    assert "MLPLATFORM_UNSAFE_SANDBOX" in refused.extra["refused"], refused.stderr
    assert unsafe.record["seccomp"] is False, unsafe.stderr
    assert any(item.startswith("seccomp:") for item in unsafe.record["missing"])
    assert unsafe.record["processes"] == "allowed"
    assert unsafe.record["landlock_abi"] >= 1  # what could be applied still was
    assert_denied(unsafe, ["read secret"], errno.EACCES)


def test_confine_refuses_a_process_that_already_has_threads(box: Box) -> None:
    start_thread = (
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(2,), daemon=True).start()\n"
    )

    child = run_child("", box, before=start_thread + REFUSED, confined=False)

    assert "before any thread starts" in child.extra["refused"], child.stderr


# --- no new processes --------------------------------------------------------------------------


def test_child_cannot_start_a_process(box: Box) -> None:
    marker = box.outside / "pwned"
    child = run_child(
        """
        import ctypes, subprocess
        marker = ARGS["marker"]
        attempt("os.system", lambda: os.system("touch " + marker))
        attempt("subprocess", lambda: subprocess.run(["/bin/sh", "-c", "touch " + marker]))
        attempt("os.execv", lambda: os.execv("/bin/sh", ["sh", "-c", "touch " + marker]))
        attempt("os.posix_spawn", lambda: os.posix_spawn("/bin/sh", ["sh", "-c", "touch "
                + marker], {}))
        def fork():
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            return pid
        attempt("os.fork", fork)
        def libc_call(name, *args):
            libc = ctypes.CDLL(None, use_errno=True)
            if getattr(libc, name)(*args) == -1:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code))
            return "succeeded"
        attempt("unshare user namespace", lambda: libc_call("unshare", 0x10000000))
        """,
        box,
        args={"marker": str(marker)},
    )

    assert_denied(child, ["subprocess", "os.execv", "os.posix_spawn", "os.fork"])
    assert_denied(child, ["unshare user namespace"])
    assert child.results["os.system"]["returned"] != 0
    assert not marker.exists()


def test_child_can_still_start_threads_and_numpy_works(box: Box) -> None:
    child = run_child(
        """
        import threading
        from concurrent.futures import ThreadPoolExecutor
        import numpy as np
        seen = []
        thread = threading.Thread(target=lambda: seen.append(sum(range(1000))))
        thread.start(); thread.join()
        with ThreadPoolExecutor(max_workers=4) as pool:
            squares = list(pool.map(lambda n: n * n, range(8)))
        matrix = np.arange(16.0).reshape(4, 4)
        report.update(seen=seen, squares=squares, product=(matrix @ matrix).sum().item())
        """,
        box,
    )

    assert child.extra["seen"] == [499500], child.stderr
    assert child.extra["squares"] == [n * n for n in range(8)]
    assert child.extra["product"] == float(
        (np.arange(16.0).reshape(4, 4) @ np.arange(16.0).reshape(4, 4)).sum()
    )


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the attack is x86-64 machine code")
def test_a_system_call_through_the_32_bit_abi_kills_the_child(box: Box) -> None:
    # mov eax, 64 (getppid in the i386 table); int 0x80; ret — a way around filters that
    # only know the native table.
    body = """
        import ctypes, mmap
        code = bytes([0xB8, 64, 0, 0, 0, 0xCD, 0x80, 0xC3])
        page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        page.write(code)
        call = ctypes.CFUNCTYPE(ctypes.c_long)(ctypes.addressof(ctypes.c_char.from_buffer(page)))
        report.update(returned=call())
        """
    free = run_child(body, box, confined=False)
    confined = run_child(body, box)

    assert free.extra["returned"] == os.getpid(), free.stderr  # the path exists on this kernel
    assert confined.returncode == -signal.SIGSYS, confined.stderr
    assert confined.results == {}


# --- no network --------------------------------------------------------------------------------


def test_child_cannot_open_or_use_sockets(box: Box) -> None:
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(4)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    unix_path = box.outside / "listener.sock"
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(unix_path))
    unix.listen(4)
    abstract_name = f"\0mlplatform-confinement-{os.getpid()}"
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind(abstract_name)
    abstract.listen(4)
    try:
        child = run_child(
            """
            import socket
            tcp, udp = tuple(ARGS["tcp"]), tuple(ARGS["udp"])
            attempt("tcp connect", lambda: socket.create_connection(tcp, timeout=2))
            def udp_send():
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                return sock.sendto(b"leak", udp)
            attempt("udp send", udp_send)
            def unix_connect(address):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(address)
            attempt("unix connect", lambda: unix_connect(ARGS["unix"]))
            attempt("abstract unix connect", lambda: unix_connect(ARGS["abstract"]))
            attempt("socketpair", lambda: socket.socketpair())
            attempt("ipv6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
            attempt("netlink", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
            attempt("tcp listen", lambda: socket.create_server(("127.0.0.1", 0)))
            """,
            box,
            args={
                "tcp": tcp.getsockname(),
                "udp": udp.getsockname(),
                "unix": str(unix_path),
                "abstract": abstract_name,
            },
        )

        names = ["tcp connect", "udp send", "unix connect", "abstract unix connect"]
        assert_denied(child, [*names, "socketpair", "ipv6", "netlink", "tcp listen"])
        for listener in (tcp, udp, unix, abstract):
            listener.setblocking(False)
        for listener in (tcp, unix, abstract):
            with pytest.raises(BlockingIOError):
                listener.accept()  # nobody connected
        with pytest.raises(BlockingIOError):
            udp.recvfrom(16)  # nothing arrived
    finally:
        for listener in (tcp, udp, unix, abstract):
            listener.close()


def test_an_inherited_socket_keeps_working(box: Box) -> None:
    # What a model runner gets from its parent: one end of a socketpair, already open.
    parent, inherited = socket.socketpair()
    parent.sendall(b"ping")
    try:
        child = run_child(
            """
            import select, socket
            sock = socket.socket(fileno=ARGS["fd"])
            ready, _, _ = select.select([sock], [], [], 5)
            data, _, _, _ = sock.recvmsg(64)
            sock.sendmsg([b"pong:", data])
            os.write(sock.fileno(), b"|raw")
            sock.sendall(b"|sendall")
            poller = select.poll()
            poller.register(sock, select.POLLOUT)
            report.update(readable=bool(ready), writable=bool(poller.poll(5000)))
            """,
            box,
            args={"fd": inherited.fileno()},
            pass_fds=(inherited.fileno(),),
        )
    finally:
        inherited.close()
    parent.settimeout(10)
    received = b""
    while chunk := parent.recv(64):
        received += chunk
    parent.close()

    assert child.extra["readable"] is True, child.stderr
    assert child.extra["writable"] is True
    assert received == b"pong:ping|raw|sendall"


# --- no file-system changes, inside or outside scratch -------------------------------------------

FILE_ATTACKS = """
import shutil
for place in ("scratch", "outside"):
    victim = ARGS[place + "_victim"]
    directory = os.path.dirname(victim)
    fresh = os.path.join(directory, "fresh.txt")
    attempt(f"{place}: overwrite", lambda: open(victim, "w").write("pwned"))
    attempt(f"{place}: append", lambda: open(victim, "a").write("pwned"))
    attempt(f"{place}: read-write", lambda: open(victim, "r+").write("pwned"))
    attempt(f"{place}: create", lambda: open(fresh, "x").write("pwned"))
    attempt(f"{place}: create with os.open",
            lambda: os.open(fresh, os.O_WRONLY | os.O_CREAT, 0o644))
    attempt(f"{place}: truncate", lambda: os.truncate(victim, 0))
    attempt(f"{place}: delete", lambda: os.remove(victim))
    attempt(f"{place}: rename", lambda: os.rename(victim, fresh))
    attempt(f"{place}: chmod", lambda: os.chmod(victim, 0o777))
    attempt(f"{place}: chown", lambda: os.chown(victim, 1, 1))
    attempt(f"{place}: utime", lambda: os.utime(victim, (0, 0)))
    attempt(f"{place}: symlink", lambda: os.symlink(victim, fresh))
    attempt(f"{place}: hard link", lambda: os.link(victim, fresh))
    attempt(f"{place}: mkdir", lambda: os.mkdir(os.path.join(directory, "newdir")))
    attempt(f"{place}: rmdir", lambda: os.rmdir(os.path.join(directory, "subdir")))
    attempt(f"{place}: mkfifo", lambda: os.mkfifo(fresh))
    attempt(f"{place}: set xattr", lambda: os.setxattr(victim, "user.pwned", b"1"))
    attempt(f"{place}: remove xattr", lambda: os.removexattr(victim, "user.kept"))
    attempt(f"{place}: copy into", lambda: shutil.copy(ARGS["scratch_victim"], fresh))
attempt("reopen stdout for writing", lambda: open("/proc/self/fd/1", "w").write("x"))
attempt("temporary file", lambda: __import__("tempfile").TemporaryFile())
attempt("read the artifact copy in scratch", lambda: open(ARGS["scratch_victim"]).read())
"""


def test_child_cannot_change_files_anywhere(box: Box) -> None:
    before = snapshot(box.root)

    child = run_child(FILE_ATTACKS, box)

    attacks = [name for name in child.results if name.startswith(("scratch:", "outside:"))]
    assert len(attacks) == 38, child.stderr
    assert_denied(child, [*attacks, "reopen stdout for writing"])
    assert child.results["temporary file"]["raised"] == "FileNotFoundError"  # no writable dir
    assert child.results["read the artifact copy in scratch"] == {
        "returned": "original scratch content\n"
    }
    assert snapshot(box.root) == before


# --- nothing to read but scratch and the runtime ------------------------------------------------

READ_ATTACKS = """
parent = os.getppid()
attempt("secret beside scratch", lambda: open(ARGS["secret"]).read())
attempt("list the directory beside scratch", lambda: os.listdir(ARGS["outside"]))
attempt("list the project", lambda: os.listdir(ARGS["project"]))
attempt("project settings", lambda: open(ARGS["project"] + "/pyproject.toml").read())
attempt("project var", lambda: os.listdir(ARGS["project"] + "/var"))
attempt("/etc/passwd", lambda: open("/etc/passwd").read())
attempt("/proc/1/environ", lambda: open("/proc/1/environ", "rb").read())
attempt("parent environ", lambda: open(f"/proc/{parent}/environ", "rb").read())
attempt("parent memory", lambda: open(f"/proc/{parent}/mem", "rb").read(1))
attempt("parent cmdline", lambda: open(f"/proc/{parent}/cmdline", "rb").read())
attempt("root file system", lambda: os.listdir("/"))
attempt("own status", lambda: len(open("/proc/self/status").read()) > 0)
registry = ARGS["project"] + "/registry/confinement.py"
attempt("registry package", lambda: "def confine" in open(registry).read())
report.update(environ=dict(os.environ), raw_environ=open("/proc/self/environ", "rb").read())
"""
READ_TARGETS = [
    "secret beside scratch",
    "list the directory beside scratch",
    "list the project",
    "project settings",
    "project var",
    "/etc/passwd",
    "/proc/1/environ",
    "parent environ",
    "parent memory",
    "parent cmdline",
    "root file system",
]


def test_child_reads_nothing_outside_scratch_and_the_runtime(
    box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)  # the platform's own environment holds such values
    args = {"project": str(ROOT)}
    # The project's own var/ (its default database and files) is a target even when this run
    # keeps its state elsewhere (MLPLATFORM_VAR_DIR).
    (ROOT / "var").mkdir(exist_ok=True)

    free = run_child(READ_ATTACKS, box, confined=False, args=args)
    confined = run_child(READ_ATTACKS, box, args=args)

    # Unconfined, the same user reads the secret: only confinement stops it.
    assert free.results["secret beside scratch"] == {
        "returned": "DJANGO_SECRET_KEY=outside-secret\n"
    }
    assert "returned" in free.results["list the project"]
    assert_denied(confined, READ_TARGETS, errno.EACCES)
    assert confined.results["own status"] == {"returned": True}
    assert confined.results["registry package"] == {"returned": True}
    environ = confined.extra["environ"]
    assert not set(SECRETS) & set(environ)
    for value in SECRETS.values():
        assert value not in confined.extra["raw_environ"]
        assert value not in json.dumps(environ)


def test_child_cannot_trace_or_signal_other_processes(box: Box) -> None:
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        child = run_child(
            """
            import ctypes, resource, signal
            libc = ctypes.CDLL(None, use_errno=True)
            parent, victim = os.getppid(), ARGS["victim"]
            def checked(result):
                if result == -1:
                    code = ctypes.get_errno()
                    raise OSError(code, os.strerror(code))
                return result
            attempt("ptrace attach", lambda: checked(libc.ptrace(16, victim, None, None)))
            class IoVec(ctypes.Structure):
                _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]
            buffer = ctypes.create_string_buffer(8)
            local = IoVec(ctypes.cast(buffer, ctypes.c_void_p), 8)
            remote = IoVec(0x400000, 8)
            attempt("process_vm_readv", lambda: checked(libc.process_vm_readv(
                parent, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)))
            attempt("kill victim", lambda: os.kill(victim, signal.SIGKILL))
            attempt("probe parent", lambda: os.kill(parent, 0))
            attempt("kill process group", lambda: os.killpg(os.getpgrp(), 0))
            attempt("kill everyone", lambda: os.kill(-1, 0))
            attempt("pidfd_open", lambda: os.pidfd_open(victim))
            attempt("lower victim limits", lambda: resource.prlimit(
                victim, resource.RLIMIT_NOFILE, (1, 1)))
            attempt("renice victim", lambda: os.setpriority(os.PRIO_PROCESS, victim, 19))
            caught = []
            signal.signal(signal.SIGUSR1, lambda *_: caught.append("SIGUSR1"))
            attempt("signal itself", lambda: os.kill(os.getpid(), signal.SIGUSR1))
            report.update(caught=caught)
            """,
            box,
            args={"victim": victim.pid},
        )

        assert_denied(
            child,
            [
                "ptrace attach",
                "process_vm_readv",
                "kill victim",
                "probe parent",
                "kill process group",
                "kill everyone",
                "pidfd_open",
                "renice victim",
            ],
        )
        assert child.results["lower victim limits"]["raised"] in ("PermissionError", "ValueError")
        assert child.extra["caught"] == ["SIGUSR1"]
        assert victim.poll() is None  # still alive
        assert resource.prlimit(victim.pid, resource.RLIMIT_NOFILE)[0] > 1
        assert os.getpriority(os.PRIO_PROCESS, victim.pid) != 19
    finally:
        victim.kill()
        victim.wait()


def test_child_cannot_regain_privileges_or_raise_its_limits(box: Box) -> None:
    child = run_child(
        """
        import ctypes, resource
        libc = ctypes.CDLL(None, use_errno=True)
        def checked(result):
            if result == -1:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code))
            return result
        attempt("setuid 0", lambda: os.setuid(0))
        attempt("setgid 0", lambda: os.setgid(0))
        attempt("setgroups", lambda: os.setgroups([0]))
        attempt("chroot", lambda: os.chroot("/"))
        attempt("mount", lambda: checked(libc.mount(b"none", b"/mnt", b"tmpfs", 0, None)))
        attempt("raise memory", lambda: resource.setrlimit(
            resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)))
        attempt("raise cpu soft limit", lambda: resource.setrlimit(resource.RLIMIT_CPU, (21, 21)))
        attempt("raise open files",
                lambda: resource.prlimit(0, resource.RLIMIT_NOFILE, (4096, 4096)))
        limits = {name: resource.getrlimit(getattr(resource, name))
                  for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NOFILE")}
        import pyseccomp
        escapes = ["ptrace", "process_vm_writev", "mount", "umount2", "pivot_root", "unshare",
                   "setns", "bpf", "perf_event_open", "kexec_load", "init_module",
                   "finit_module", "delete_module", "keyctl", "add_key", "request_key",
                   "io_uring_setup", "personality", "userfaultfd", "execve", "execveat",
                   "fork", "vfork", "socket", "connect", "memfd_create", "capset", "setresuid",
                   "shmget", "msgget", "semget", "setxattrat", "removexattrat", "file_setattr",
                   "clone3"]
        # Numbers shared by every architecture, for calls this libseccomp may not know.
        newer = {"setxattrat": 463, "removexattrat": 466, "file_setattr": 469}
        offset = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, "pidfd_open") - 434
        libc.syscall.restype = ctypes.c_long
        for name in escapes:
            number = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
            if number == -1:
                number = newer[name] + offset
            attempt("syscall " + name, lambda: checked(libc.syscall(ctypes.c_long(number),
                                                                   0, 0, 0, 0, 0, 0)))
        report.update(limits=limits, escapes=escapes)
        """,
        box,
        memory_mb=800,
        cpu_seconds=20,
    )

    assert_denied(child, ["setuid 0", "setgid 0", "setgroups", "chroot", "mount"])
    for name in ("raise memory", "raise cpu soft limit", "raise open files"):
        assert child.results[name]["raised"] in ("PermissionError", "ValueError"), name
    assert child.extra["limits"] == {
        "RLIMIT_AS": [800 * 1024 * 1024] * 2,
        "RLIMIT_CPU": [20, 21],
        "RLIMIT_NOFILE": [256, 256],
    }
    escapes = [name for name in child.extra["escapes"] if name != "clone3"]
    assert_denied(child, [f"syscall {name}" for name in escapes])
    # ENOSYS, so that libc falls back to clone, whose flags the filter can read.
    assert child.results["syscall clone3"]["errno"] == errno.ENOSYS


def test_memory_beyond_the_limit_fails(box: Box) -> None:
    child = run_child(
        """
        import numpy as np
        attempt("bytes", lambda: len(bytearray(400 * 1024 * 1024)))
        attempt("array", lambda: np.ones(100_000_000).sum())
        """,
        box,
        memory_mb=300,
    )

    if child.results:  # or the kernel killed it, which is as good
        assert child.results["bytes"]["raised"] == "MemoryError"
        assert child.results["array"]["raised"] == "MemoryError"
    else:
        assert child.returncode < 0, child.stderr


def test_cpu_time_beyond_the_limit_kills_the_child(box: Box) -> None:
    started = time.monotonic()

    child = run_child("while True:\n    pass\n", box, cpu_seconds=1, timeout=30)

    assert child.returncode in (-signal.SIGXCPU, -signal.SIGKILL), child.stderr
    assert time.monotonic() - started < 15


# --- what a model load needs still works -------------------------------------------------------


@pytest.fixture
def models_in_scratch(
    box: Box, estimators: dict[str, Any], frame: tuple[pd.DataFrame, np.ndarray, np.ndarray]
) -> dict[str, Any]:
    """Artifacts as the platform copies them into scratch, and the predictions they must give."""
    X, y_class, _ = frame
    chosen = dict(estimators)
    chosen["hist_gradient_boosting"] = HistGradientBoostingClassifier(max_iter=5).fit(X, y_class)
    (box.scratch / "models.pkl").write_bytes(pickle.dumps(chosen))
    (box.scratch / "linear.skops").write_bytes(sio.dumps(estimators["linear"]))
    matrix = X.to_numpy(dtype=np.float32)
    onnx_model = to_onnx(estimators["linear"], matrix[:1])
    (box.scratch / "linear.onnx").write_bytes(onnx_model.SerializeToString())
    (box.scratch / "rows.pkl").write_bytes(pickle.dumps(X.head(5)))
    for path in box.scratch.iterdir():
        if path.is_file():
            path.chmod(0o644)
    expected = {name: model.predict(X.head(5)).tolist() for name, model in chosen.items()}
    return {"expected": expected, "linear": estimators["linear"].predict(X.head(5)).tolist()}


def test_models_load_predict_and_convert_after_confinement(
    box: Box, models_in_scratch: dict[str, Any]
) -> None:
    lazy = [
        "sklearn.ensemble._hist_gradient_boosting.predictor",
        "sklearn.neighbors",
        "sklearn.svm",
        "sklearn.decomposition",
        "scipy.sparse.linalg",
        "scipy.special",
        "skops.io",
        "skl2onnx",
        "onnx.checker",
        "onnxruntime",
        "registry.signature",
    ]
    child = run_child(
        """
        import importlib, pickle, warnings
        warnings.simplefilter("ignore")
        preloaded = [name for name in ARGS["lazy"] if name in sys.modules]
        for name in ARGS["lazy"]:
            importlib.import_module(name)
        import numpy as np
        with open("rows.pkl", "rb") as stream:
            rows = pickle.load(stream)
        with open("models.pkl", "rb") as stream:
            models = pickle.load(stream)
        predictions = {name: model.predict(rows).tolist() for name, model in models.items()}
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        def run_graph(graph_bytes):
            session = ort.InferenceSession(graph_bytes, options, providers=["CPUExecutionProvider"])
            feed = {session.get_inputs()[0].name: rows.to_numpy(dtype=np.float32)}
            return session.run(None, feed)[0].ravel().tolist()
        onnx_stored = run_graph(open("linear.onnx", "rb").read())
        from skl2onnx import to_onnx
        import onnx.checker
        converted = to_onnx(models["linear"], rows.to_numpy(dtype=np.float32)[:1])
        onnx.checker.check_model(converted)
        onnx_converted = run_graph(converted.SerializeToString())
        import skops.io as sio
        data = open("linear.skops", "rb").read()
        skops_model = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
        report.update(preloaded=preloaded, predictions=predictions,
             onnx_stored=onnx_stored, onnx_converted=onnx_converted,
             skops=skops_model.predict(rows).tolist())
        """,
        box,
        args={"lazy": lazy},
    )

    assert child.record.get("seccomp") is True, child.stderr
    assert child.extra["preloaded"] == []  # each one really was imported after confine()
    # The same predictions, to the last few bits: BLAS may sum in another order in another
    # process (its thread count and kernel are chosen per process).
    expected_all = models_in_scratch["expected"]
    assert child.extra["predictions"].keys() == expected_all.keys()
    for name, values in expected_all.items():
        if all(isinstance(value, float) for value in values):
            np.testing.assert_allclose(child.extra["predictions"][name], values, rtol=1e-12)
        else:
            assert child.extra["predictions"][name] == values, name
    np.testing.assert_allclose(child.extra["skops"], models_in_scratch["linear"], rtol=1e-12)
    expected = np.asarray(models_in_scratch["linear"])
    np.testing.assert_allclose(child.extra["onnx_stored"], expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(child.extra["onnx_converted"], expected, rtol=1e-4, atol=1e-4)


def test_stdout_and_inherited_descriptors_stay_writable(box: Box) -> None:
    read_end, write_end = os.pipe()
    output = box.outside / "preopened.out"
    output_fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        child = run_child(
            """
            print("stdout works", flush=True)
            os.write(ARGS["pipe"], b"pipe works")
            os.write(ARGS["file"], b"file works")
            sys.stderr.write("stderr works\\n")
            """,
            box,
            args={"pipe": write_end, "file": output_fd},
            pass_fds=(write_end, output_fd),
            max_file_bytes=1024,
        )
    finally:
        os.close(write_end)
        os.close(output_fd)
    with os.fdopen(read_end, "rb") as pipe:
        piped = pipe.read()

    assert child.record.get("seccomp") is True, child.stderr
    assert piped == b"pipe works"
    assert output.read_bytes() == b"file works"
    assert "stderr works" in child.stderr


# --- each wall on its own --------------------------------------------------------------------


def test_landlock_alone_denies_reads_writes_tcp_and_signals(box: Box) -> None:
    """With seccomp missing (and allowed to be), Landlock still holds on its own."""
    abi = available()["landlock_abi"]
    assert abi >= 1
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(1)
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    before = snapshot(box.root)
    try:
        child = run_child(
            """
            import signal, socket
            attempt("read secret", lambda: open(ARGS["secret"]).read())
            attempt("overwrite outside", lambda: open(ARGS["outside_victim"], "w").write("x"))
            attempt("overwrite scratch", lambda: open(ARGS["scratch_victim"], "w").write("x"))
            attempt("create in scratch", lambda: open("fresh.txt", "x").write("x"))
            attempt("delete in scratch", lambda: os.remove(ARGS["scratch_victim"]))
            attempt("tcp connect", lambda: socket.create_connection(tuple(ARGS["tcp"]), 2))
            attempt("kill victim", lambda: os.kill(ARGS["victim"], signal.SIGKILL))
            """,
            box,
            before='sys.modules["pyseccomp"] = None\n',
            allow_unsafe=True,
            args={"tcp": tcp.getsockname(), "victim": victim.pid},
        )
        tcp.setblocking(False)

        assert child.record["seccomp"] is False, child.stderr
        writes = [
            "overwrite outside",
            "overwrite scratch",
            "create in scratch",
            "delete in scratch",
        ]
        assert_denied(child, ["read secret", *writes], errno.EACCES)
        if abi >= 4:  # TCP rules
            assert_denied(child, ["tcp connect"], errno.EACCES)
            with pytest.raises(BlockingIOError):
                tcp.accept()
        if abi >= 6:  # signal scoping
            assert_denied(child, ["kill victim"], errno.EPERM)
            assert victim.poll() is None
        assert snapshot(box.root) == before
    finally:
        tcp.close()
        victim.kill()
        victim.wait()
