"""The server from its own wheel, as the Docker image gets it: built from what the
Dockerfile copies, installed into a fresh venv where neither the checkout nor the SDK is
importable, and started with the Dockerfile's own command.

Installing torch, Ray and the rest into a fresh venv would take minutes, so the venv sees
them through a .pth naming this interpreter's site-packages folders, added only after the
server is installed from the wheel. Lines of a .pth are plain path entries: the .pth files
in that site-packages (the editable installs of the checkout and the SDK) never run there,
and the probe below checks that the server's packages load from the venv's own
site-packages and that `lrlab` does not load at all.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.version import VERSION
from tests.support.lrlab_server import cli_env, healthy
from tests.support.net import free_port
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

ROOT = Path(__file__).resolve().parents[2]
SERVER_PACKAGES = ("api", "services", "workers", "migrations")
# What migrating and analysing read from disk, beside the code.
PACKAGE_DATA = (
    "migrations/alembic.ini",
    "migrations/script.py.mako",
    "services/analyzer/kind_model.json",
)

PIP = (sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet")

# Run inside the venv: where the server's packages come from, and what else is importable.
PROBE = """
import importlib, importlib.util, json, sys, sysconfig
from services.analyzer.classifier import MODEL_PATH, default_model
print(json.dumps({
    "purelib": sysconfig.get_paths()["purelib"],
    "files": {m: importlib.import_module(m).__file__ for m in sys.argv[1:]},
    "sdk": importlib.util.find_spec("lrlab") is not None,
    "path": sys.path,
    "model": [str(MODEL_PATH), len(default_model().classes)],
}))
"""


@dataclass(frozen=True)
class Dockerfile:
    copied: tuple[str, ...]  # what COPY brings in before `pip install .`
    command: tuple[str, ...]  # CMD

    @classmethod
    def read(cls) -> Dockerfile:
        copied: list[str] = []
        command: tuple[str, ...] = ()
        for line in (ROOT / "Dockerfile").read_text().splitlines():
            word, _, rest = line.partition(" ")
            if word == "COPY":
                copied += rest.split()[:-1]  # the last word is the destination
            elif word == "CMD":
                command = tuple(json.loads(rest))
        return cls(tuple(copied), command)


def clean_env() -> dict[str, str]:
    """No LRLAB_* settings of the caller, and no PYTHONPATH reaching into the checkout."""
    return {k: v for k, v in cli_env().items() if k != "PYTHONPATH"}


@dataclass(frozen=True)
class ServerVenv:
    root: Path
    wheel: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def run(self, *args: str, cwd: Path) -> str:
        done = subprocess.run(
            [str(self.python), "-I", *args],
            cwd=cwd,
            env=clean_env(),
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout


def build_wheel(sources: list[str], work: Path) -> Path:
    """The wheel `pip install .` would build from the Dockerfile's copies (built from a copy,
    so the checkout gets no build/ or egg-info; no build isolation: no network needed)."""
    src = work / "src"
    for name in sources:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"), str(src)],
        check=True,
    )
    (wheel,) = (work / "dist").glob("lrlab_server-*.whl")
    return wheel


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> ServerVenv:
    work = tmp_path_factory.mktemp("server-wheel")
    wheel = build_wheel(list(Dockerfile.read().copied), work)
    root = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    into = ["--python", str(root / "bin" / "python")]
    subprocess.run(
        [*PIP, *into, "install", "--no-deps", "--no-index", "--no-compile", str(wheel)],
        check=True,
    )
    (dist_info,) = root.glob("lib/python*/site-packages/lrlab_server-*.dist-info")
    origin = json.loads((dist_info / "direct_url.json").read_text())
    assert origin["url"] == wheel.as_uri() and "archive_info" in origin, origin
    server = ServerVenv(root, wheel)
    bare = "import importlib.util as u; print(u.find_spec('fastapi') is None)"
    assert server.run("-c", bare, cwd=work).strip() == "True", "the venv is not a bare one"
    # Only now the third-party dependencies, from this interpreter's site-packages folders.
    deps = {p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")}
    (dist_info.parent / "lrlab_test_dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
    return server


def test_the_dockerfile_builds_from_the_server_packages_and_runs_its_own_command() -> None:
    docker = Dockerfile.read()
    assert set(SERVER_PACKAGES) <= set(docker.copied)
    assert docker.command == ("lrlab-server", "serve")


def test_the_wheel_carries_the_command_and_the_data_files(venv: ServerVenv) -> None:
    with zipfile.ZipFile(venv.wheel) as wheel:
        names = set(wheel.namelist())
        (entry_points,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
        declared = wheel.read(entry_points).decode()
    assert set(PACKAGE_DATA) <= names, sorted(set(PACKAGE_DATA) - names)
    assert "[console_scripts]\nlrlab-server = api.cli:main" in declared
    assert "[lrlab.commands]\nserver = api.cli:main" in declared  # `lrlab serve` beside the SDK
    assert not any(n.startswith(("lrlab/", "tests/", "bench/")) for n in names)


def test_the_venv_loads_the_server_from_the_wheel_and_has_no_sdk(
    venv: ServerVenv, tmp_path: Path
) -> None:
    seen = json.loads(venv.run("-c", PROBE, *SERVER_PACKAGES, cwd=tmp_path))
    site = Path(seen["purelib"])
    assert site.is_relative_to(venv.root)
    for module, file in seen["files"].items():
        assert Path(file).is_relative_to(site / module), (module, file)
    assert not seen["sdk"], "the SDK must not be importable next to the server alone"
    checkout = {str(ROOT), str(ROOT / "sdk")}
    assert checkout.isdisjoint(seen["path"]), seen["path"]
    model_path, classes = seen["model"]
    assert Path(model_path).is_relative_to(site) and classes > 1


def test_lrlab_server_serves_from_its_wheel(venv: ServerVenv, tmp_path: Path) -> None:
    command, *args = Dockerfile.read().command
    port = free_port()
    data_dir = tmp_path / "data"
    proc = subprocess.Popen(
        [str(venv.root / "bin" / command), *args, "--port", str(port), "--data-dir", str(data_dir)],
        cwd=tmp_path,
        env=clean_env(),
        start_new_session=True,  # its local Ray goes with it if it has to be killed
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(healthy(proc, url), "lrlab-server answering /health", timeout=60)
        health = httpx.get(f"{url}/health", timeout=5)
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "database": "sqlite", "version": VERSION}
        assert (data_dir / "admin-token").read_text().startswith("lrl_")
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as `docker stop` sends; it must shut down on that alone."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail("lrlab-server did not stop on SIGTERM within 30 s")
