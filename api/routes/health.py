from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import StoreDep
from api.schemas import HealthOut
from api.version import VERSION

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
def health(store: StoreDep) -> JSONResponse:
    """Liveness and database reachability; the one route that needs no token."""
    ok = store.ping()
    body = HealthOut(
        status="ok" if ok else "degraded",
        database=store.db.dialect if ok else "unreachable",
        version=VERSION,
    )
    return JSONResponse(status_code=200 if ok else 503, content=body.model_dump())
