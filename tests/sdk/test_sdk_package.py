"""The SDK is a light package of its own: importing it pulls in no server code, no torch,
no Ray; its metadata says what it needs."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import distribution

import lrlab
import pytest

HEAVY = ("torch", "ray", "api", "services", "workers", "sqlalchemy", "fastapi", "pandas")


@pytest.mark.subprocess
def test_importing_lrlab_loads_nothing_heavy() -> None:
    code = (
        "import json, sys, lrlab, lrlab.cli; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    loaded = set(json.loads(out.stdout))
    assert "lrlab" in loaded and "httpx" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_the_distribution_needs_only_light_packages() -> None:
    dist = distribution("lrlab")
    required = {r.split(";")[0].split(">")[0].split("=")[0].strip() for r in dist.requires or []}
    core = {r for r in required if "extra ==" not in r}
    assert {"httpx", "pydantic", "click", "rich", "pyyaml"} <= core
    assert core.isdisjoint({"torch", "ray", "lrlab-server", "sqlalchemy", "fastapi"})
    extras = [r for r in dist.requires or [] if "extra ==" in r]
    assert any(r.startswith("pandas") for r in extras)
    assert any(r.startswith("pyarrow") for r in extras)
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert scripts == {"lrlab": "lrlab.cli:main"}


def test_the_server_adds_its_commands_through_the_entry_point_group() -> None:
    """One click group: `lrlab serve` beside the SDK, `lrlab-server serve` without it."""
    server = distribution("lrlab-server")
    groups = {(ep.group, ep.name): ep.value for ep in server.entry_points}
    assert groups[("lrlab.commands", "server")] == "api.cli:main"
    scripts = {ep.name: ep.value for ep in server.entry_points if ep.group == "console_scripts"}
    assert scripts == {"lrlab-server": "api.cli:main"}


def test_the_public_names() -> None:
    for name in lrlab.__all__:
        assert hasattr(lrlab, name), name
    assert issubclass(lrlab.ValidationError, lrlab.LrlabError)
    assert lrlab.__version__
