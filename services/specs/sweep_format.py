"""Which schema a sweep document holds, told from its top-level keys (not its syntax):
a native lrlab sweep spec or a W&B sweep file.

Keys only a native spec has (`space`, `max_trials`, `early_stop`, `policy`, ...) say
native; keys only a W&B file has (`parameters`, `run_cap`, `early_terminate`, `program`,
...) say W&B. Keys both have (`name`, `method`, `metric`, `base`, `seed`, ...) say
nothing, except that a document with a `base` and none of W&B's keys is native: every
W&B file has `parameters`. Both kinds at once is ambiguous, and the caller must say which
it meant.
"""

from __future__ import annotations

from typing import Any, Literal

from services.specs.common import SpecError
from services.specs.sweep import SweepSpec
from services.specs.wandb import TOP_LEVEL_KEYS

__all__ = ["NATIVE_ONLY", "WANDB_ONLY", "SweepFormat", "sweep_format"]

SweepFormat = Literal["native", "wandb"]
NATIVE_ONLY = frozenset(SweepSpec.model_fields) - TOP_LEVEL_KEYS
WANDB_ONLY = TOP_LEVEL_KEYS - frozenset(SweepSpec.model_fields)


def sweep_format(document: Any) -> SweepFormat | None:
    """The schema `document`'s keys say; None when they say nothing (not a mapping, or
    only shared or unknown keys and no base). SpecError when they say both."""
    if not isinstance(document, dict):
        return None
    native = sorted(NATIVE_ONLY & document.keys())
    wandb = sorted(WANDB_ONLY & document.keys())
    if native and wandb:
        raise SpecError(
            "",
            f"this document has keys of a native sweep spec ({', '.join(native)}) and of a "
            f"W&B sweep file ({', '.join(wandb)}); keep the keys of one, or say which it is "
            "with ?format=native or ?format=wandb",
        )
    if native or (not wandb and "base" in document):
        return "native"
    return "wandb" if wandb else None
