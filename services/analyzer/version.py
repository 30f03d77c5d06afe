"""The analyzer's version: a digest of its own source.

A diagnosis is cached with the version that made it, and a cache made by other rules
reads as stale: after an upgrade, finished trials are diagnosed again by the rules that
ship, without anyone having to remember to bump a number when a rule changes."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["ANALYZER_VERSION"]


# Outside the package but part of what an external run's diagnosis says: which logged
# series it reads and what its config tells the rules.
_EXTERNAL_INPUTS = ("tracking/metric_names.py", "tracking/run_config.py")


def _digest() -> str:
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    # The fitted kind classifier decides as much as the code does.
    sources = [
        *sorted(here.glob("*.py")),
        here / "kind_model.json",
        *(here.parent / name for name in _EXTERNAL_INPUTS),
    ]
    for path in sources:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


ANALYZER_VERSION = _digest()
