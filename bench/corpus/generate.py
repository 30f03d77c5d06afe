"""Generate the corpus: train every recipe's seeds with lrlab's runner, one at a time.

    .venv/bin/python -m bench.corpus.generate [--only PREFIX ...] [--redo] [--list]
    .venv/bin/python -m bench.corpus.generate --recheck

Resumable: a curve already in its kind's file with the recipe's current spec is
skipped (unless --redo); curves of removed recipes are dropped; each
finished curve is written at once, so an interrupted run loses at most the curve in
progress. One process, one torch thread: the machine is shared. --recheck trains
nothing: it applies the current sanity checks to the stored curves (after a check was
made stricter) and prints each curve whose verdict changed.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.corpus.checks import check  # noqa: E402
from bench.corpus.files import SERIES, Curve, load_kind, reduce, write_kind  # noqa: E402
from bench.corpus.recipe import Recipe, spec_for  # noqa: E402
from bench.corpus.recipes import RECIPES  # noqa: E402
from bench.corpus.record import record  # noqa: E402


def make_curve(recipe: Recipe, seed: int) -> Curve:
    spec = spec_for(recipe, seed)
    series, outcome, steps_run = record(spec)
    made, why = check(recipe.kind, series)
    kept = {name: reduce(*series[name]) for name in SERIES if name in series}
    return Curve(
        id=f"{recipe.name}/s{seed}",
        recipe=recipe.name,
        kind=recipe.kind,
        also=recipe.also,
        task=recipe.task,
        seed=seed,
        spec=spec,
        outcome=outcome,
        steps_run=steps_run,
        made=made,
        check=why,
        series=kept,
    )


def _current(curves: list[Curve]) -> dict[str, Curve]:
    """The curves whose recipe and seed still exist (a removed recipe leaves the file)."""
    wanted = {f"{r.name}/s{seed}" for r in RECIPES.values() for seed in r.seeds}
    return {c.id: c for c in curves if c.id in wanted}


def recheck() -> int:
    """Re-apply the current checks to every stored curve; rewrite the files that changed."""
    kinds = sorted({r.kind for r in RECIPES.values()})
    for kind in kinds:
        curves = load_kind(kind)
        changed = False
        for i, curve in enumerate(curves):
            made, why = check(curve.kind, curve.series)
            if (made, why) != (curve.made, curve.check):
                if made != curve.made:
                    print(f"{curve.id:60s} made {curve.made} -> {made} ({why})")
                curves[i] = dataclasses.replace(curve, made=made, check=why)
                changed = True
        if changed:
            write_kind(kind, curves)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=[], help="recipe name prefixes")
    parser.add_argument("--redo", action="store_true", help="regenerate existing curves")
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    parser.add_argument("--recheck", action="store_true", help="re-apply the checks only")
    args = parser.parse_args(argv)
    if args.recheck:
        return recheck()
    recipes = [
        r for r in RECIPES.values() if not args.only or any(r.name.startswith(p) for p in args.only)
    ]
    if args.list:
        for r in recipes:
            print(f"{r.name:55s} seeds {list(r.seeds)} also {list(r.also)}")
        return 0
    by_kind: dict[str, dict[str, Curve]] = {}
    for recipe in recipes:
        if recipe.kind not in by_kind:
            by_kind[recipe.kind] = _current(load_kind(recipe.kind))
        curves = by_kind[recipe.kind]
        for seed in recipe.seeds:
            cid = f"{recipe.name}/s{seed}"
            done = curves.get(cid)
            # Kept unless asked to redo it or its recipe changed since it was made.
            if done is not None and not args.redo and done.spec == spec_for(recipe, seed):
                continue
            began = time.perf_counter()
            curve = make_curve(recipe, seed)
            curves[cid] = curve
            write_kind(recipe.kind, curves.values())
            print(
                f"{cid:60s} {time.perf_counter() - began:5.1f}s {curve.outcome:9s} "
                f"steps {curve.steps_run:5d} made={curve.made} ({curve.check})",
                flush=True,
            )
    for kind, curves in by_kind.items():
        write_kind(kind, curves.values())  # drops the curves of removed recipes too
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
