"""`make demo`: start an embedded lrlab server and walk through a learning-rate sweep.

Uses the embedded defaults (SQLite under ./.lrlab, the local admin token written on first
start) and talks to the server over real HTTP, the way the SDK and the dashboard will.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("LRLAB_DATA_DIR", ROOT / ".lrlab"))

SWEEP = {
    "name": "digits-lr-sweep",
    "description": "SGD from too small to divergent, and Adam, on scikit-learn digits",
    "base": {
        "task": {"name": "digits", "model": "mlp"},
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        "batch_size": 32,
        "budget": {"epochs": 4},
        "eval_every": 15,
    },
    "space": {
        "optimizer": {
            "values": [
                {"name": "sgd", "lr": lr, "momentum": 0.9}
                for lr in (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
            ]
            + [{"name": "adam", "lr": lr} for lr in (1e-4, 1e-3, 1e-2)]
        }
    },
    "max_concurrent": 2,
    "metric": {"name": "val_loss", "goal": "minimize"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"lrlab serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)  # the server is still binding its port
    sys.exit("lrlab serve did not become ready in time")


def trials_of(api: httpx.Client, sweep_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.get(f"/sweeps/{sweep_id}/trials").json()["items"]
    return items


def watch(api: httpx.Client, sweep_id: int, timeout: float = 600.0) -> dict[str, Any]:
    """Print progress until every trial has ended."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        sweep: dict[str, Any] = api.get(f"/sweeps/{sweep_id}").json()
        counts = ", ".join(f"{n} {state}" for state, n in sorted(sweep["trial_counts"].items()))
        if counts != last:
            print(f"  [{time.strftime('%H:%M:%S')}] {counts}", flush=True)
            last = counts
        if sweep["status"] != "running":
            return sweep
        time.sleep(0.5)  # a progress display: poll twice a second
    sys.exit("the sweep did not finish in time")


def last_value(api: httpx.Client, trial_id: int, name: str) -> float | str | None:
    found = api.get(f"/trials/{trial_id}/metrics", params={"name": name, "max_points": 4})
    series = found.json()["series"]
    return series[0]["values"][-1] if series and series[0]["values"] else None


def fmt(value: float | str | None) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else f"{value:.4g}"


def print_table(api: httpx.Client, trials: list[dict[str, Any]]) -> None:
    print(
        f"  {'#':>2}  {'optimizer':<9} {'lr':>7}  {'status':<9} {'train_loss':>10} "
        f"{'val_loss':>9} {'val_acc':>8}  note"
    )
    for t in trials:
        opt = t["spec"]["optimizer"]
        print(
            f"  {t['number']:>2}  {opt['name']:<9} {opt['lr']:>7g}  {t['status']:<9} "
            f"{fmt(last_value(api, t['id'], 'train_loss')):>10} "
            f"{fmt(last_value(api, t['id'], 'val_loss')):>9} "
            f"{fmt(last_value(api, t['id'], 'val_accuracy')):>8}  {t['stop_reason'] or ''}"
        )


def print_analysis(api: httpx.Client, trials: list[dict[str, Any]]) -> None:
    for t in trials:
        opt = t["spec"]["optimizer"]
        report = api.get(f"/trials/{t['id']}/analysis").json()
        top = report["findings"][0]
        print(f"  #{t['number']} {opt['name']} lr={opt['lr']:g}: {', '.join(report['kinds'])}")
        if top["kind"] != "healthy":
            print(f"      {top['summary']}")
            changes = ", ".join(f"{k}={v}" for k, v in top["changes"].items())
            print(f"      -> {top['recommendation']}" + (f" [{changes}]" if changes else ""))


def show(title: str) -> None:
    print(f"\n== {title}")


def main() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LRLAB_DATA_DIR": str(DATA_DIR)}
    lrlab = Path(sys.executable).with_name("lrlab")
    server = subprocess.Popen(
        [str(lrlab), "serve", "--port", str(port), "--num-cpus", "2"], env=env
    )
    try:
        wait_ready(url, server)
        token = (DATA_DIR / "admin-token").read_text().strip()
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
        show(f"lrlab at {url} (store: {api.get('/health').json()['database']})")
        print("tasks:", ", ".join(t["name"] for t in api.get("/tasks").json()))
        print("optimizers:", ", ".join(o["name"] for o in api.get("/optimizers").json()))
        print("schedules:", ", ".join(s["name"] for s in api.get("/schedules").json()))

        show("a spec lrlab refuses, and why")
        bad = api.post("/jobs", json={"task": "digits", "optimizer": {"name": "adam", "lr": 0}})
        for err in bad.json()["detail"]:
            print(f"  {bad.status_code} {err['field']}: {err['message']}")

        show("a learning-rate sweep on scikit-learn digits, trained on local Ray")
        sweep = api.post("/sweeps", json=SWEEP).raise_for_status().json()
        print(f"sweep {sweep['id']} '{sweep['name']}': {len(trials_of(api, sweep['id']))} trials")
        sweep = watch(api, sweep["id"])
        show("results")
        trials = trials_of(api, sweep["id"])
        print_table(api, trials)
        show("analysis: what went wrong, and what to change")
        print_analysis(api, trials)
        print(f"\nAPI docs: {url}/docs   token file: {DATA_DIR / 'admin-token'}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
