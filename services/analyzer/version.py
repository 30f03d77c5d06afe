"""The analyzer's version: a digest of its own source.

A diagnosis is cached with the version that made it, and a cache made by other rules
reads as stale: after an upgrade, finished trials are diagnosed again by the rules that
ship, without anyone having to remember to bump a number when a rule changes."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["ANALYZER_VERSION"]


def _digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


ANALYZER_VERSION = _digest()
