"""Stored findings of a trial or a sweep, kept current by the live analyzer."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from api.deps import CurrentProject, PageDep, StoreDep
from api.schemas import MAX_STEP, FindingOut, PageOut
from services.analyzer import KINDS
from services.domain.errors import InvalidInput
from services.domain.finding_records import StoredFinding
from services.domain.records import Page
from services.store.findings_repo import FindingFilter

router = APIRouter(tags=["findings"])
TrialId = Annotated[int, Path(ge=1, le=MAX_STEP)]
SweepId = Annotated[int, Path(ge=1, le=MAX_STEP)]


def finding_filter(
    min_severity: Annotated[
        Literal["info", "warning", "critical"] | None,
        Query(description="Only findings at least this severe."),
    ] = None,
    kind: Annotated[
        list[str] | None,
        Query(max_length=len(KINDS), description="Only these kinds (repeat the parameter)."),
    ] = None,
    include_inactive: Annotated[
        bool, Query(description="Also findings a later analysis no longer found.")
    ] = False,
) -> FindingFilter:
    if kind is not None:
        unknown = [k for k in kind if k not in KINDS]
        if unknown:
            raise InvalidInput(
                f"unknown finding kind {unknown[0]!r}; valid kinds: {', '.join(KINDS)}",
                field="kind",
            )
    kinds = tuple(dict.fromkeys(kind)) if kind is not None else None
    return FindingFilter(min_severity, kinds, include_inactive)


FilterDep = Annotated[FindingFilter, Depends(finding_filter)]


def _out(page: Page[StoredFinding]) -> PageOut[FindingOut]:
    return PageOut[FindingOut].build(page, [FindingOut.of(f) for f in page.items])


@router.get("/trials/{trial_id}/findings", response_model=PageOut[FindingOut])
def trial_findings(
    trial_id: TrialId, project: CurrentProject, store: StoreDep, page: PageDep, only: FilterDep
) -> PageOut[FindingOut]:
    """The trial's findings, most severe and most confident first (provisional while it
    runs; the live analyzer updates them as it trains)."""
    found = store.findings.for_trial(
        project.id, trial_id, only, limit=page.limit, offset=page.offset
    )
    return _out(found)


@router.get("/sweeps/{sweep_id}/findings", response_model=PageOut[FindingOut])
def sweep_findings(
    sweep_id: SweepId, project: CurrentProject, store: StoreDep, page: PageDep, only: FilterDep
) -> PageOut[FindingOut]:
    """Findings of every trial of the sweep, most severe and most confident first."""
    found = store.findings.for_sweep(
        project.id, sweep_id, only, limit=page.limit, offset=page.offset
    )
    return _out(found)
