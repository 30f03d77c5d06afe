"""Stored specs, decoded: the typed form of a spec the store keeps as a JSON document.

A client's spec is checked when it arrives (a 422 names the field). Once stored, a spec
that no longer decodes (a task plug-in uninstalled, a document written by another
version) is the server's fault, not the client's: decoding raises StoredSpecError, which
names the sweep or trial and reaches the client as a logged 500, never a 422."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from services.specs import SweepSpec, TrialSpec
from services.specs.common import describe_error
from services.specs.failure_policy import FailurePolicy
from services.specs.sweep import Policy

__all__ = [
    "StoredSpecError",
    "decode_failure_policy",
    "decode_policy",
    "decode_sweep_spec",
    "decode_trial_spec",
]

M = TypeVar("M", TrialSpec, SweepSpec, Policy, FailurePolicy)


class StoredSpecError(RuntimeError):
    """A stored spec that no longer decodes; `owner` is "trial 12" or "sweep 3"."""

    def __init__(self, owner: str, reason: str) -> None:
        super().__init__(f"the stored spec of {owner} no longer decodes: {reason}")
        self.owner = owner
        self.reason = reason


def _decode(model: type[M], document: Mapping[str, Any], owner: str) -> M:
    try:
        return model.model_validate(dict(document))
    except ValidationError as exc:
        raise StoredSpecError(owner, describe_error(exc)) from exc


def decode_trial_spec(document: Mapping[str, Any], *, trial_id: int | None) -> TrialSpec:
    return _decode(TrialSpec, document, f"trial {trial_id}")


def decode_sweep_spec(document: Mapping[str, Any], *, sweep_id: int | None) -> SweepSpec:
    return _decode(SweepSpec, document, f"sweep {sweep_id}")


def decode_policy(document: Mapping[str, Any], *, sweep_id: int | None) -> Policy:
    """A sweep's stop policy (the `policy` key of its spec; absent: the defaults)."""
    return _decode(Policy, document.get("policy") or {}, f"sweep {sweep_id}")


def decode_failure_policy(
    document: Mapping[str, Any], *, sweep_id: int | None
) -> FailurePolicy | None:
    """A sweep's failure policy: the defaults when its spec names none (a spec stored
    before there was one), None when the spec turned it off (`failure_policy: null`)."""
    if "failure_policy" not in document:
        return FailurePolicy()
    found = document["failure_policy"]
    return None if found is None else _decode(FailurePolicy, found, f"sweep {sweep_id}")
