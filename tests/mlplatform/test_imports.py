"""No function-level import of a project module: dependencies are stated at the top of each
module, where import-linter's layer contract (pyproject.toml) sees and checks them, instead of
being hidden inside a function to dodge an import cycle.

The few function-level imports that remain are needed for a reason other than a cycle; each is
listed here with that reason.
"""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "mlplatform",
    "accounts",
    "tenancy",
    "jobs",
    "registry",
    "features",
    "serving",
    "batch",
    "rollout",
    "monitoring",
)

# (module, function's qualified name or "*" for the whole module) -> why the import is inside it.
# An app's `AppConfig.ready()` (in `<app>.apps`) may import its own modules and connect receivers:
# it is Django's documented place for that, run once the app registry is ready.
READY = "ready"

# (module, function's qualified name or "*" for the whole module) -> why the import is inside it.
ALLOWED = {
    ("mlplatform.gunicorn", "post_worker_init"): "the gunicorn config module is loaded by the "
    "master before Django is set up (and the serving benchmark runs it without Django)",
    ("serving.cache", "_metrics"): "prometheus_client must be configured for multi-process mode "
    "before the metrics module is imported; the module is kept once imported",
    ("registry.validator", "*"): "the confined validation child imports the artifact-loading "
    "modules only after confine() has put up its walls",
    ("registry.runner", "*"): "the confined model runner imports the artifact-loading modules "
    "only after confine() has put up its walls",
}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_project(module: str | None) -> bool:
    return bool(module) and str(module).split(".")[0] in PACKAGES


class _Finder(ast.NodeVisitor):
    """Collects (qualified function name, line, imported module) for imports inside functions."""

    def __init__(self) -> None:
        self.scope: list[str] = []
        self.depth = 0  # how many functions enclose the current node
        self.found: list[tuple[str, int, str]] = []

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1
        self.scope.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if self.depth and _is_project(alias.name):
                self.found.append((".".join(self.scope), node.lineno, alias.name))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if self.depth and (node.level or _is_project(node.module)):
            self.found.append((".".join(self.scope), node.lineno, node.module or "."))


def function_level_imports(root: Path) -> list[str]:
    """Every function- or method-level import of a project module under `root` that is not in
    ALLOWED, as "module:line in function imports target"; migrations are not checked."""
    problems = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            module = _module_name(path, root)
            finder = _Finder()
            finder.visit(ast.parse(path.read_text(), filename=str(path)))
            for function, line, target in finder.found:
                if (module, function) in ALLOWED or (module, "*") in ALLOWED:
                    continue
                if module.endswith(".apps") and function.endswith(f"Config.{READY}"):
                    continue
                problems.append(f"{module}:{line} in {function}() imports {target}")
    return problems


def test_no_function_level_import_of_a_project_module() -> None:
    problems = function_level_imports(ROOT)

    assert problems == [], (
        "Import project modules at the top of the module (a cycle means a layer is wrong: see "
        "docs/architecture.md), or add the function to ALLOWED with its reason:\n"
        + "\n".join(problems)
    )


def test_every_allowed_exception_is_still_needed() -> None:
    """A stale entry would let a new import slip in unseen."""
    stale = []
    for module, function in ALLOWED:
        path = ROOT / Path(*module.split("."))
        source = (path / "__init__.py") if path.is_dir() else path.with_suffix(".py")
        finder = _Finder()
        finder.visit(ast.parse(source.read_text()))
        if not any(function in ("*", found) for found, _, _ in finder.found):
            stale.append(f"{module}:{function}")

    assert stale == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n    from jobs import tasks\n", ["app.mod:2 in f() imports jobs"]),
        (
            "class A:\n    def m(self):\n        import batch.plan\n",
            ["app.mod:3 in A.m() imports batch.plan"],
        ),
        ("def f():\n    from . import tasks\n", ["app.mod:2 in f() imports ."]),
        ("from jobs import tasks\n\n\ndef f():\n    import json\n", []),
        ("def f():\n    from django.db import models\n", []),
    ],
)
def test_the_check_finds_function_level_imports(
    tmp_path: Path, source: str, expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given project packages app, jobs and batch, with app holding one module
    monkeypatch.setattr(sys.modules[__name__], "PACKAGES", ("app", "jobs", "batch"))
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "mod.py").write_text(source)

    # When the tree is checked
    problems = function_level_imports(tmp_path)

    # Then each import of a project module inside a function or method is reported
    assert problems == expected
