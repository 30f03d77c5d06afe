"""The rungs of W&B-style hyperband early stopping, as W&B documents its brackets.

W&B's two forms, with eta the reduction factor:
- max_iter and s: max_iter/eta, max_iter/eta/eta, ... s of them, each truncated to an
  integer, stopping before one falls below 1 (max_iter 27, s 2, eta 3: 9, 3);
- min_iter: min_iter, min_iter*eta, min_iter*eta*eta, ... (min_iter 3, eta 3: 3, 9, 27, 81).
At each rung a running trial is compared with every trial that reached it and stops unless
it is within the best 1/eta of them. Rungs count evaluations of the sweep's metric.
"""

from __future__ import annotations

from services.specs.early_stop import HyperbandStop

__all__ = ["MAX_RUNGS", "hyperband_rungs"]

# W&B lists 100 brackets for the min_iter form; no trial is longer than 2**31 evaluations.
MAX_RUNGS = 100
_LONGEST = 2**31


def hyperband_rungs(spec: HyperbandStop, horizon: int | None = None) -> list[int]:
    """The rungs of `spec`, ascending, each once.

    Counting up from min_resource stops below max_resource when it is set. `horizon` is a
    trial's length in evaluations: rungs at or past it are never reached and are left out.
    """
    eta = spec.reduction_factor
    rungs: list[int] = []
    if spec.brackets is not None and spec.max_resource is not None:
        band = float(spec.max_resource)
        for _ in range(spec.brackets):
            band /= eta
            if band < 1:
                break
            rungs.append(int(band))
    else:
        band = float(spec.min_resource or 1)
        ceiling = min(spec.max_resource or _LONGEST, _LONGEST)
        while len(rungs) < MAX_RUNGS and band < ceiling:
            rungs.append(int(band))
            band *= eta
    if horizon is not None:
        rungs = [rung for rung in rungs if rung < horizon]
    return sorted(set(rungs))
