"""A sweep's analysis: best trial, lr sensitivity and stable range, scaling, next steps."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentProject, SettingsDep, StoreDep
from api.routes.sweeps import SweepId
from api.schemas import SweepAnalysisOut
from services.analysis.sweep_analysis import analyze_stored_sweep

router = APIRouter(tags=["sweeps"])


@router.get("/sweeps/{sweep_id}/analysis", response_model=SweepAnalysisOut)
def sweep_analysis(
    sweep_id: SweepId, project: CurrentProject, store: StoreDep, settings: SettingsDep
) -> SweepAnalysisOut:
    """The best trial and config, the lr sensitivity per optimizer and batch size with the
    stable lr range, the best lr per batch size against the linear and sqrt scaling rules,
    counts of findings by kind, and what to do next. Provisional while trials run."""
    result = analyze_stored_sweep(store, settings, project.id, sweep_id)
    return SweepAnalysisOut.model_validate(result.to_dict())
