"""`make demo`: start an embedded lrlab server and walk through a learning-rate sweep.

Uses the embedded defaults (SQLite under ./.lrlab, the local admin token written on first
start) and talks to the server over real HTTP, the way the SDK and the dashboard will.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

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
        "budget": {"epochs": 5},
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


def show(title: str) -> None:
    print(f"\n== {title}")


def main() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LRLAB_DATA_DIR": str(DATA_DIR)}
    lrlab = Path(sys.executable).with_name("lrlab")
    server = subprocess.Popen([str(lrlab), "serve", "--port", str(port)], env=env)
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

        show("submitting the learning-rate sweep")
        sweep = api.post("/sweeps", json=SWEEP).raise_for_status().json()
        print(f"sweep {sweep['id']} '{sweep['name']}': {sweep['trial_counts']}")
        trials = api.get(f"/sweeps/{sweep['id']}/trials").json()["items"]
        print(f"  {'trial':>5}  {'optimizer':<9} {'lr':>8}  status")
        for t in trials:
            opt = t["spec"]["optimizer"]
            print(f"  {t['number']:>5}  {opt['name']:<9} {opt['lr']:>8g}  {t['status']}")

        show("metric points in, downsampled series out")
        trial = trials[0]["id"]
        points = [
            {"name": "train_loss", "step": s, "value": 2.3 * math.exp(-s / 3000) + 0.05}
            for s in range(20_000)
        ] + [{"name": "train_loss", "step": 20_000, "value": "NaN"}]
        for i in range(0, len(points), 5000):
            api.post(f"/trials/{trial}/metrics", json={"points": points[i : i + 5000]})
        series = api.get(
            f"/trials/{trial}/metrics", params={"name": "train_loss", "max_points": 200}
        ).json()["series"][0]
        print(
            f"  {series['total']} points stored, {len(series['steps'])} returned; "
            f"last value {series['values'][-1]!r} at step {series['steps'][-1]}"
        )
        print("  (synthetic points exercise the store; real training runs on Ray workers)")
        api.post(f"/sweeps/{sweep['id']}/cancel").raise_for_status()
        print(f"\nAPI docs: {url}/docs   token file: {DATA_DIR / 'admin-token'}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
