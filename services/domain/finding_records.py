"""Findings as stored: one per (trial, kind), with the cursor that pages them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.domain.kinds import Severity

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, order=True)
class FindingCursor:
    """A position in the order findings change in: after (updated_at, id)."""

    updated_at: datetime
    id: int

    def encode(self) -> str:
        """A compact token ("<microseconds since epoch>-<id>") for an SSE event id."""
        micros = (self.updated_at - _EPOCH) // _MICROSECOND
        return f"{micros}-{self.id}"

    @classmethod
    def decode(cls, token: str) -> FindingCursor:
        """The cursor `encode` wrote; ValueError for anything else."""
        micros, sep, ident = token.partition("-")
        if not sep or not micros.isdigit() or not ident.isdigit():
            raise ValueError(f"not a finding cursor: {token!r}")
        return cls(_EPOCH + int(micros) * _MICROSECOND, int(ident))


@dataclass(frozen=True)
class StoredFinding:
    """A finding as stored: the analyzer's Finding plus where it belongs and its history."""

    id: int
    project_id: int
    sweep_id: int | None
    trial_id: int
    kind: str
    severity: Severity
    confidence: float
    step: int | None
    summary: str
    evidence: dict[str, Any]
    recommendation: str
    changes: dict[str, Any]
    alternatives: list[dict[str, Any]]
    provisional: bool  # found while the trial was still running
    active: bool  # False: a later analysis no longer found it
    created_at: datetime
    updated_at: datetime

    @property
    def cursor(self) -> FindingCursor:
        return FindingCursor(self.updated_at, self.id)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, in Finding.to_dict()'s shape plus the stored fields."""
        return {
            "id": self.id,
            "trial_id": self.trial_id,
            "sweep_id": self.sweep_id,
            "kind": self.kind,
            "severity": self.severity,
            "confidence": self.confidence,
            "step": self.step,
            "summary": self.summary,
            "evidence": self.evidence,
            "recommendation": self.recommendation,
            "changes": self.changes,
            "alternatives": self.alternatives,
            "provisional": self.provisional,
            "active": self.active,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class FindingChanges:
    """What one upsert did, by kind."""

    added: tuple[str, ...]  # new, or found again after being inactive
    updated: tuple[str, ...]  # still found, with changed content
    deactivated: tuple[str, ...]  # no longer found
    previously_active: frozenset[str]  # kinds active before this upsert

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.deactivated)
