"""Re-apply a corrected check to the stored corpus, where the stored data suffices.

    .venv/bin/python -m bench.families.relabel

The exploding check once compared the largest gradient norm of the whole run with its
early median, so a run whose first step had the largest gradient and that then converged
(full-batch GD, adaptive optimizers at their first steps) was labelled exploding, against
the definition (growth over the early level). label.grad_growth now skips the first steps.
A stored curve whose only confirmed condition was exploding and whose gradient did not
grow is dropped ("ambiguous"): deciding that it is healthy needs its whole lr ladder and
the bigger model, which the corpus does not keep. Other confirmed conditions keep their
order (PRIORITY). Prints what changed.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np

from bench.families.files import CORPUS_DIR, Curve, read_family, write_family
from bench.families.label import grad_growth

EXPLODING = "exploding_gradients"
THRESHOLD = 100  # label.py's exploding check


def corrected(c: Curve) -> Curve:
    if EXPLODING not in c.confirmed or "grad_norm" not in c.series:
        return c
    grad = c.series["grad_norm"][1]
    grad = grad[np.isfinite(grad)]
    ratio = grad_growth(grad, c.measured["grad_early"])
    if ratio >= THRESHOLD:
        return c
    confirmed = tuple(k for k in c.confirmed if k != EXPLODING)
    measured = {**c.measured, "grad_max_ratio": ratio}
    label = confirmed[0] if confirmed else "ambiguous"
    return dataclasses.replace(c, label=label, confirmed=confirmed, measured=measured)


def main() -> None:
    moves: Counter[tuple[str, str]] = Counter()
    for path in sorted(CORPUS_DIR.glob("*.npz")):
        curves = read_family(path)
        fixed = [corrected(c) for c in curves]
        for before, after in zip(curves, fixed, strict=True):
            if before.label != after.label:
                moves[(before.label, after.label)] += 1
                print(f"{before.name}: {before.label} -> {after.label}")
        if any(a is not b for a, b in zip(curves, fixed, strict=True)):
            write_family(path.stem, fixed)
    for (a, b), n in sorted(moves.items()):
        print(f"{a} -> {b}: {n}")


if __name__ == "__main__":
    main()
