"""The `lrlab` command through its real entry point: output for people and --json for
scripts, and exit codes (0 ok, 1 refused or failed, 2 usage, 3 not found or not allowed)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import lrlab
import pytest
import yaml
from click.testing import CliRunner
from lrlab.cli import app as cli_app
from lrlab.cli import main

from tests.support.api import lr_grid_sweep
from tests.support.files import write
from tests.support.lrlab_server import LRLAB, LrlabServer, cli_env


class Cli:
    def __init__(self, server: LrlabServer, cwd: Path) -> None:
        self.env = cli_env(LRLAB_URL=server.url, LRLAB_TOKEN=server.token, COLUMNS="200")
        self.cwd = cwd

    def __call__(self, *args: str, code: int = 0, **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [LRLAB, *args],
            capture_output=True,
            text=True,
            env={**self.env, **env},
            cwd=self.cwd,
            timeout=120,
        )
        assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
        return done

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).stdout)


@pytest.fixture
def cli(lrlab_server: LrlabServer, tmp_path: Path) -> Cli:
    return Cli(lrlab_server, tmp_path)


@pytest.fixture
def sweep_file(tmp_path: Path) -> Path:
    return write(tmp_path / "sweep.yaml", yaml.safe_dump(lr_grid_sweep(name="cli")))


def test_help_lists_the_sdk_and_server_commands(cli: Cli) -> None:
    out = cli("--help").stdout
    for command in ("submit", "status", "watch", "analyze", "export", "cancel", "tasks"):
        assert command in out
    assert "serve" in out and "db" in out  # from the server package's entry point
    assert "Exit codes" in out
    assert "--port" in cli("serve", "--help").stdout


def test_submit_status_and_cancel(cli: Cli, sweep_file: Path) -> None:
    assert "sweep" in cli("submit", str(sweep_file)).stdout
    sweep = cli.json("submit", str(sweep_file))
    assert sweep["name"] == "cli" and sweep["trial_counts"] == {"queued": 2}

    listed = cli.json("status")
    assert sweep["id"] in {s["id"] for s in listed["items"]}
    one = cli.json("status", str(sweep["id"]))
    assert one["sweep"]["id"] == sweep["id"] and len(one["trials"]) == 2
    table = cli("status", str(sweep["id"])).stdout
    assert "optimizer.lr=0.01" in table and "queued" in table

    trial_id = one["trials"][0]["id"]
    assert cli.json("cancel", "--trial", str(trial_id))["status"] == "cancelled"
    assert cli.json("cancel", str(sweep["id"]))["status"] == "cancelled"
    assert "cancelled" in cli("cancel", str(sweep["id"])).stdout


def test_submit_prints_the_servers_warnings_on_stderr(cli: Cli, tmp_path: Path) -> None:
    spec = lr_grid_sweep(name="warned", metric={"name": "val_accuracy", "goal": "minimize"})
    path = write(tmp_path / "warned.yaml", yaml.safe_dump(spec))
    done = cli("submit", str(path))
    assert "warning: metric.goal: minimizing val_accuracy, where higher is better" in done.stderr
    assert "warning" not in done.stdout and "sweep" in done.stdout
    quiet = cli("submit", str(write(tmp_path / "fine.yaml", yaml.safe_dump(lr_grid_sweep()))))
    assert "warning" not in quiet.stderr
    as_json = json.loads(cli("submit", str(path), "--json").stdout)
    assert as_json["warnings"] == [
        "metric.goal: minimizing val_accuracy, where higher is better; did you mean maximize?"
    ]


def test_registries(cli: Cli) -> None:
    assert "digits" in {t["name"] for t in cli.json("tasks")}
    assert "sgd" in {o["name"] for o in cli.json("optimizers")}
    assert "cosine" in cli("schedules").stdout


def test_analyze_a_trial_and_a_sweep(cli: Cli, client: lrlab.Client) -> None:
    run = client.start_run("cli-analysis")
    for s in range(200):
        run.log({"train_loss": 1.05**s if s < 150 else float("inf")}, step=s)
    run.finish()
    analysis = cli.json("analyze", "--trial", str(run.id))
    assert "divergence" in analysis["kinds"]
    assert "divergence" in cli("analyze", "--trial", str(run.id)).stdout
    sweep = cli.json("analyze", str(run.info.sweep_id))
    assert sweep["sweep_id"] == run.info.sweep_id and "summary" in sweep
    assert "ranked by" in cli("analyze", str(run.info.sweep_id)).stdout


def test_export(cli: Cli, client: lrlab.Client, tmp_path: Path) -> None:
    sweep = client.create_sweep(lr_grid_sweep())
    trials = client.trials(sweep.id)
    for t in trials:
        client.log_metrics(
            t.id, [{"name": "val_loss", "step": s, "value": 1.0 - s / 10} for s in range(5)]
        )
    rows = list(csv.DictReader(io.StringIO(cli("export", str(sweep.id)).stdout)))
    assert [int(r["trial_id"]) for r in rows] == [t.id for t in trials]
    assert rows[0]["params.optimizer.lr"] == "0.01"
    assert float(rows[0]["final"]) == pytest.approx(0.6) and rows[0]["last_step"] == "4"

    points = json.loads(cli("export", str(sweep.id), "--points", "--format", "json").stdout)
    assert len(points) == 10 and set(points[0]) == {"trial_id", "name", "step", "value", "time"}

    import pyarrow.parquet as pq

    target = tmp_path / "sweep.parquet"
    cli("export", str(sweep.id), "--format", "parquet", "-o", str(target))
    assert pq.read_table(target).num_rows == 2

    # Without pyarrow: a clear message and exit 1, not a traceback.
    shadow = tmp_path / "no-pyarrow"
    write_pkg = shadow / "pyarrow"
    write_pkg.mkdir(parents=True)
    (write_pkg / "__init__.py").write_text("raise ImportError('pyarrow is hidden')\n")
    missing = cli(
        "export",
        str(sweep.id),
        "--format",
        "parquet",
        "-o",
        str(target),
        code=1,
        PYTHONPATH=str(shadow),
    )
    assert "needs pyarrow" in missing.stderr and "Traceback" not in missing.stderr
    cli("export", str(sweep.id), "--format", "parquet", code=2)  # no -o: usage


def test_watch_follows_a_sweep_to_its_end(cli: Cli, client: lrlab.Client) -> None:
    run = client.start_run("watched")
    for s in range(20):
        run.log({"val_loss": 1.0 / (s + 1)}, step=s)
    run.flush()
    err_file = cli.cwd / "watch.err"
    with err_file.open("w") as err:
        watcher = subprocess.Popen(
            [LRLAB, "watch", str(run.info.sweep_id), "--json"],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=cli.env,
            cwd=cli.cwd,
        )
    # Whatever happens, the watcher is gone within two minutes (reads below then end).
    deadline = threading.Timer(120, watcher.kill)
    deadline.start()
    try:
        assert watcher.stdout is not None
        first = json.loads(watcher.stdout.readline())  # it is connected and reading
        assert first["type"] in ("trial", "metrics")
        run.finish()
        out = watcher.stdout.read()  # through the same buffer as readline, to the end
        watcher.wait(timeout=60)
    finally:
        deadline.cancel()
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, err_file.read_text()
    events = [first, *(json.loads(line) for line in out.splitlines())]
    assert events[-1]["type"] == "end"
    steps = {p["step"] for e in events if e["type"] == "metrics" for p in e["data"]["points"]}
    assert steps == set(range(20))
    human = cli("watch", str(run.info.sweep_id)).stdout
    assert "1/1 trials done" in human


def test_lr_find_and_recommend(cli: Cli) -> None:
    started = cli.json("lr-find", "digits", "--no-wait", "--max-lr", "1", "--steps", "40")
    assert started["status"] == "queued" and started["options"]["steps"] == 40
    assert "range test" in cli("lr-find", "digits", "--no-wait").stdout
    advice = cli.json("recommend", "--task", "digits", "--optimizer", "adam")
    assert advice["enough_history"] is False
    assert "not enough history" in cli("recommend", "--task", "digits", "--optimizer", "sgd").stdout
    heavy = cli.json(
        "recommend",
        "--task",
        "digits",
        "--optimizer",
        "sgd",
        "--momentum",
        "0.9",
        "--nesterov",
        "--epochs",
        "5",
    )
    assert heavy["query"]["optimizer_params"] == {"momentum": 0.9, "nesterov": True}
    assert heavy["query"]["epochs"] == 5


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("status", "987654"), 3, "not found"),
        (("analyze", "--trial", "987654"), 3, "not found"),
        (("cancel",), 2, "give a SWEEP_ID or --trial"),
        (("cancel", "1", "--trial", "2"), 2, "one of them"),
        (("status", "not-a-number"), 2, "not a valid integer"),
        (("submit", "missing.yaml"), 1, "cannot read"),
    ],
)
def test_exit_codes(cli: Cli, args: tuple[str, ...], code: int, message: str) -> None:
    done = cli(*args, code=code)
    assert message in done.stderr


def test_errors_as_json_and_refusals(cli: Cli, tmp_path: Path) -> None:
    err = cli.json("status", "987654", code=3)["error"]
    assert err["type"] == "NotFound" and err["status"] == 404
    bad = write(tmp_path / "bad.json", json.dumps(lr_grid_sweep(max_concurrent=0)))
    refused = cli.json("submit", str(bad), code=1)["error"]
    assert refused["type"] == "ValidationError"
    assert refused["details"][0]["field"] == "max_concurrent"
    assert "unknown or revoked token" in cli("status", code=3, LRLAB_TOKEN="lrl_nope").stderr


def test_server_commands_say_how_to_install_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_app, "plugin_commands", dict)  # as if lrlab-server were absent
    result = CliRunner().invoke(main, ["serve", "--port", "1"])
    assert result.exit_code == 2
    assert "comes with the lrlab server" in result.output and "pip install" in result.output
