"""The layering, read from the source: every import of every module (those inside functions
and under TYPE_CHECKING included) is checked against the rules below.

A rule names the files of a layer (a glob from the repository root), the module prefixes
those files may not import, and the prefixes allowed within them. A prefix covers the module
itself and everything under it ("services.domain" covers services.domain.records). When the
layout moves, retarget the tables; the first tests fail if a glob or an exception stops
matching anything, so a moved folder cannot leave a rule checking nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Where each top-level package's sources live (the SDK's `lrlab` is under sdk/).
SOURCE_ROOTS = (ROOT, ROOT / "sdk")


@dataclass(frozen=True)
class Rule:
    layer: str  # files of the layer, a glob relative to the repository root
    forbidden: tuple[str, ...]  # module prefixes the layer may not import ...
    allowed: tuple[str, ...] = ()  # ... except these, within them
    why: str = ""


SERVER = ("api", "services", "workers", "migrations")
WEB_AND_TRAINING = ("torch", "ray", "fastapi", "starlette", "uvicorn")
# The domain layer: the vocabulary (records, kinds, errors) and the spec language.
DOMAIN = ("services.domain", "services.specs")
# Pure engines over the domain: curves in, diagnosis out; past trials in, params out.
ENGINES = ("services.analyzer", "services.search")

RULES = (
    Rule(
        "services/**/*.py",
        WEB_AND_TRAINING,
        why="services run in the API and the scheduler alike, without torch, Ray or the web",
    ),
    Rule(
        "services/domain/**/*.py",
        ("services",),
        DOMAIN,
        why="the vocabulary depends on nothing else of lrlab's",
    ),
    Rule("services/specs/**/*.py", ("services",), DOMAIN, why="the spec language is domain"),
    *(
        Rule(
            f"services/{engine.rpartition('.')[2]}/**/*.py",
            ("services",),
            (*DOMAIN, *ENGINES),
            why="engines are pure: no store, no application service, no clock",
        )
        for engine in ENGINES
    ),
    Rule(
        "services/store/**/*.py",
        ("services",),
        # the analyzer's result types are what the store keeps as findings
        ("services.store", *DOMAIN, "services.analyzer.findings"),
        why="the store persists the domain; application services build on it, not under it",
    ),
    Rule(
        "sdk/lrlab/**/*.py",
        SERVER,
        why="the SDK is a light package of its own that talks HTTP only",
    ),
    Rule("workers/**/*.py", ("api",), why="workers serve the scheduler, not the HTTP API"),
)

# Known violations: (file, imported module prefix) -> why it stands for now. Each must
# still occur; when the import goes, its entry goes too.
EXCEPTIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    file: str  # relative to the repository root
    line: int
    module: str  # absolute, dotted; `from m import n` reads as m.n (n may be a submodule)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: imports {self.module}"


def module_name(path: Path) -> str:
    """The dotted name a file imports as, from the source root that holds its package."""
    base = next(r for r in reversed(SOURCE_ROOTS) if path.is_relative_to(r))
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[Import]:
    name = module_name(path)
    # The package a relative import starts from: the module's own for __init__.py.
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return read_imports(path.read_text(), path.relative_to(ROOT).as_posix(), package)


def read_imports(source: str, file: str, package: str) -> Iterator[Import]:
    """Every import statement of `source`, wherever it sits, in line order."""
    found: list[Import] = []
    for node in ast.walk(ast.parse(source, filename=file)):
        if isinstance(node, ast.Import):
            found += [Import(file, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                target = base if alias.name == "*" else f"{base}.{alias.name}"
                found.append(Import(file, node.lineno, target))
    return iter(sorted(found, key=lambda imp: imp.line))


def covered(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layer_files(rule: Rule) -> list[Path]:
    return sorted(p for p in ROOT.glob(rule.layer) if p.is_file())


def breaches(rule: Rule) -> Iterator[Import]:
    for path in layer_files(rule):
        for imp in imports_of(path):
            if covered(imp.module, rule.forbidden) and not covered(imp.module, rule.allowed):
                yield imp


def excused_by(imp: Import) -> tuple[str, str] | None:
    return next(
        (key for key in EXCEPTIONS if key[0] == imp.file and covered(imp.module, key[1:])),
        None,
    )


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.layer)
def test_each_layer_finds_modules_to_check(rule: Rule) -> None:
    files = layer_files(rule)
    assert files, f"{rule.layer} matches no file: retarget the rule, do not drop it"
    assert any(any(True for _ in imports_of(p)) for p in files), f"{rule.layer}: no imports"


def test_every_exception_still_occurs() -> None:
    used = {excused_by(imp) for rule in RULES for imp in breaches(rule)}
    stale = sorted(set(EXCEPTIONS) - used)
    assert not stale, f"exceptions that no longer occur (remove them): {stale}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.layer)
def test_the_layer_keeps_its_imports(rule: Rule) -> None:
    found = [imp for imp in breaches(rule) if excused_by(imp) is None]
    report = "\n".join(map(str, found))
    assert not found, f"{rule.layer} ({rule.why}):\n{report}"


def test_the_reader_resolves_relative_and_nested_imports() -> None:
    """Relative imports resolve against the package; imports inside functions and
    TYPE_CHECKING blocks count like any other."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import torch.nn as nn\n"
        "def f():\n    from .models import Base\n    from .. import settings, errors\n"
        "from . import *\n"
    )
    read = [(imp.line, imp.module) for imp in read_imports(source, "x.py", "services.store")]
    assert read == [
        (1, "typing.TYPE_CHECKING"),
        (3, "torch.nn"),
        (5, "services.store.models.Base"),
        (6, "services.settings"),
        (6, "services.errors"),
        (7, "services.store"),
    ]


def test_no_two_modules_under_services_share_a_name() -> None:
    """A module's name says which one it is: no `pruning.py` in two layers."""
    by_name: dict[str, list[str]] = {}
    for path in sorted((ROOT / "services").rglob("*.py")):
        if path.name != "__init__.py":
            by_name.setdefault(path.name, []).append(path.relative_to(ROOT).as_posix())
    assert len(by_name) > 100  # the walk found the services package
    assert {name: paths for name, paths in by_name.items() if len(paths) > 1} == {}
