"""The test suite's own rules: test modules share code through tests/support (and fixtures
through conftest.py) only, waiting is done by one helper, and tests that start processes
say so with the `subprocess` marker (`make test-fast` leaves them out)."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

from tests.support.markers import FIXTURE_MARKERS, markers_for

TESTS = Path(__file__).resolve().parents[1]
WAITING = TESTS / "support" / "waiting.py"
# Names the copies of the wait helper went by; only waiting.py may define one.
WAIT_NAMES = re.compile(r"_?(wait|wait_for|wait_until|until)")
SPAWNS = re.compile(r"\bsubprocess\.(run|Popen|call|check_call|check_output)\(|\bserving\(")


@functools.cache
def modules() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text()) for path in sorted(TESTS.rglob("*.py"))}


def imported(tree: ast.Module) -> set[str]:
    """Every dotted name the module imports, `from a import b` counted as a.b too."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def is_test_or_conftest(dotted: str) -> bool:
    parts = dotted.split(".")
    return parts[0] == "tests" and any(
        part.startswith("test_") or part == "conftest" for part in parts
    )


def sleeps(node: ast.AST) -> bool:
    return any(
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "sleep"
        for call in ast.walk(node)
    )


def test_no_module_imports_from_a_test_module_or_a_conftest() -> None:
    offending = {
        str(path.relative_to(TESTS)): sorted(filter(is_test_or_conftest, imported(tree)))
        for path, tree in modules().items()
    }
    assert {path: names for path, names in offending.items() if names} == {}


def test_the_layout_check_sees_imports_of_test_modules() -> None:
    tree = ast.parse("from tests.unit import test_runner\nfrom tests.sdk.conftest import x\n")
    assert sorted(filter(is_test_or_conftest, imported(tree))) == [
        "tests.sdk.conftest",
        "tests.sdk.conftest.x",
        "tests.unit.test_runner",
    ]
    assert not any(map(is_test_or_conftest, imported(ast.parse("from tests.support import x"))))


def test_there_is_one_wait_helper() -> None:
    defined, polling = [], []
    for path, tree in modules().items():
        where = str(path.relative_to(TESTS))
        # Module-level helpers (a fake's `wait` method stands in for a clock, not a helper).
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and WAIT_NAMES.fullmatch(node.name):
                defined.append(f"{where}: {node.name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.While) and sleeps(node):
                polling.append(f"{where}:{node.lineno}")
    assert defined == ["support/waiting.py: wait_until"]
    assert polling == [f"support/waiting.py:{poll_line()}"]


def poll_line() -> int:
    (loop,) = [n for n in ast.walk(ast.parse(WAITING.read_text())) if isinstance(n, ast.While)]
    return loop.lineno


def test_test_modules_that_start_processes_carry_the_subprocess_marker() -> None:
    """Marked by hand, or through a fixture that starts a process (a textual check: it
    catches a new module that spawns and forgot the marker, not a test within one)."""
    spawning = [name for name, marks in FIXTURE_MARKERS.items() if "subprocess" in marks]
    unmarked = [
        str(path.relative_to(TESTS))
        for path in sorted(TESTS.rglob("test_*.py"))
        if SPAWNS.search(text := path.read_text())
        and "pytest.mark.subprocess" not in text
        and not any(re.search(rf"\b{name}\b", text) for name in spawning)
    ]
    assert unmarked == []


def test_fixtures_give_their_markers() -> None:
    assert markers_for(["tmp_path"], {}) == set()
    assert markers_for(["ray_scheduler", "ray_local", "store"], {"store": "sqlite"}) == {"ray"}
    assert markers_for(["client", "store"], {"store": "postgres"}) == {"postgres"}
    assert markers_for(["ray_cluster", "pg_server"], {}) == {"ray", "subprocess", "postgres"}
    assert markers_for(["client", "lrlab_server"], {}) == {"subprocess"}
