"""Generate the family corpus: train every setup's lr ladder, label each run by the
objective checks, and write tests/corpus_families/<family>.npz.

    .venv/bin/python -m bench.families.generate            # resumable, 2 processes
    .venv/bin/python -m bench.families.generate --only rnn --redo

Each setup's runs are cached in bench/families/.cache (ignored by git) as they finish, so
an interrupted run resumes where it stopped. A family's setups with no runs in the cache
keep the curves its file already holds: they were labelled when written, and a label is
not redone after scoring.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench.families.files import CORPUS_DIR, Curve, read_family, write_family
from bench.families.label import Measured, label, measure
from bench.families.setups import FAMILIES, SETUPS, Setup

CACHE = Path(__file__).parent / ".cache"


def _config(setup: Setup, lr: float, n_train: int) -> dict[str, Any]:
    """The run's config as a user would post it with an external run."""
    spec, opt, sched = setup.spec, setup.spec["optimizer"], setup.spec["schedule"]
    config: dict[str, Any] = {
        "lr": lr,
        "optimizer": opt["name"],
        "batch_size": n_train if spec["batch"] == "full" else spec["batch"],
        "max_steps": spec["steps"],
        "schedule": sched["name"],
        "model": spec["model"]["arch"],
    }
    for key in ("momentum", "nesterov", "weight_decay"):
        if key in opt:
            config[key] = opt[key]
    if sched.get("warmup"):
        config["warmup_steps"] = sched["warmup"]
    if spec.get("clip"):
        config["grad_clip_norm"] = spec["clip"]
    return config


def _run_setup(setup: Setup) -> list[dict[str, Any]]:
    import torch

    from bench.families.data import make_task
    from bench.families.train import train

    torch.set_num_threads(1)
    task = make_task(setup.task, setup.seed, setup.n_train)
    runs = {}
    for mult in setup.ladder:
        lr = setup.base_lr * mult
        runs[lr] = train(task, setup.spec, lr, setup.seed)

    def reference(model: dict[str, Any] | None) -> Any:
        """The best of `model` at the lrs around the setup's base."""
        if model is None:
            return None
        best = None
        for mult in (0.3, 1.0, 3.0):
            run = train(task, {**setup.spec, "model": model}, setup.base_lr * mult, setup.seed)
            m = measure(run.series, run.hidden)
            if m.finite and (best is None or m.end < best.end):
                best = m
        return best

    bigger, fixed = reference(setup.bigger), reference(setup.fixed)
    n_train = int(task.x[0].shape[0])
    return [
        {
            "family": setup.family,
            "setup": setup.key,
            "task": setup.task,
            "lr": lr,
            "config": _config(setup, lr, n_train),
            "measured": vars(measure(run.series, run.hidden)),
            "bigger": None if bigger is None else vars(bigger),
            "fixed": None if fixed is None else vars(fixed),
            "series": run.series,
        }
        for lr, run in runs.items()
    ]


def _labelled(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs of one setup with their labels: each rung judged against the others."""
    rungs = {r["lr"]: Measured(**r["measured"]) for r in runs}
    ref = runs[0]
    bigger = None if ref["bigger"] is None else Measured(**ref["bigger"])
    fixed = None if ref["fixed"] is None else Measured(**ref["fixed"])
    out = []
    for r in runs:
        primary, confirmed = label(r["lr"], rungs, bigger, fixed)
        out.append({**r, "label": primary, "confirmed": confirmed})
    return out


def _cached(setup: Setup, redo: bool) -> list[dict[str, Any]] | None:
    path = CACHE / (setup.key.replace("/", "__") + ".json")
    if redo or not path.exists():
        return None
    data = json.loads(path.read_text())
    return data["runs"] if data.get("spec") == repr(setup) else None


def _store(setup: Setup, runs: list[dict[str, Any]]) -> None:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / (setup.key.replace("/", "__") + ".json")
    path.write_text(json.dumps({"spec": repr(setup), "runs": runs}))


def _family_curves(
    family: str, keys: list[str], results: dict[str, list[dict[str, Any]]]
) -> list[Curve]:
    """The family's curves in setup order: labelled from the runs in hand, and for a setup
    with none, as its file on disk holds them."""
    path = CORPUS_DIR / f"{family}.npz"
    on_disk = read_family(path) if path.exists() else []
    curves: list[Curve] = []
    for key in keys:
        if key in results:
            curves += [Curve.from_record(r) for r in _labelled(results[key])]
        else:
            curves += [c for c in on_disk if c.setup == key]
    return curves


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", help="families or setup keys, comma-separated")
    parser.add_argument("--redo", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    todo = [s for s in SETUPS if wanted is None or s.family in wanted or s.key in wanted]
    results: dict[str, list[dict[str, Any]]] = {}
    pending = []
    for s in todo:
        cached = _cached(s, args.redo)
        if cached is None:
            pending.append(s)
        else:
            results[s.key] = cached
    t0 = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        for s, runs in zip(pending, pool.map(_run_setup, pending), strict=True):
            _store(s, runs)
            results[s.key] = runs
            labels = Counter(r["label"] for r in _labelled(runs))
            print(f"{time.time() - t0:7.1f}s {s.key}: {dict(labels)}", flush=True)
    for s in SETUPS:  # every family whose setups are all in hand
        if s.key not in results:
            cached = _cached(s, False)
            if cached is not None:
                results[s.key] = cached
    for family in FAMILIES:
        keys = [s.key for s in SETUPS if s.family == family]
        if any(k in results for k in keys):
            write_family(family, _family_curves(family, keys, results))
    total = Counter(r["label"] for runs in results.values() for r in _labelled(runs))
    print(f"labels: {dict(total)}; written to {CORPUS_DIR}")


if __name__ == "__main__":
    main()
