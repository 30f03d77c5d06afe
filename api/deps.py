"""Request dependencies, as Annotated aliases so routes stay one line per need."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.domain.capacity import ClusterCapacity
from services.domain.errors import Forbidden, InvalidInput, Unauthorized
from services.domain.records import ApiToken, Project
from services.settings import Settings
from services.store import Store

_bearer = HTTPBearer(auto_error=False, description="An lrlab API token (lrl_...)")


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _wake_after(request: Request) -> Iterator[None]:
    """Once the route has stored its work (not when it failed): the background loops'
    wake-up, so that they act on it now rather than at their next tick."""
    yield
    wake: Callable[[], None] = request.app.state.wake
    wake()


def get_capacity(request: Request) -> ClusterCapacity | None:
    """The cluster's nodes as the scheduler in this process last saw them, if it has."""
    capacity: Callable[[], ClusterCapacity | None] = request.app.state.capacity
    return capacity()


StoreDep = Annotated[Store, Depends(get_store)]
WAKES_LOOPS = Depends(_wake_after)  # in a route's dependencies=[...]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CapacityDep = Annotated[ClusterCapacity | None, Depends(get_capacity)]


@dataclass(frozen=True)
class Auth:
    project: Project
    token: ApiToken


# What a viewer's (read-only) token may do: read. Every other method changes something.
READ_METHODS = frozenset({"GET", "HEAD"})


def authenticate(
    request: Request,
    store: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Auth:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    found = store.projects.authenticate(credentials.credentials)
    if found is None:
        raise Unauthorized("unknown or revoked token")
    project, token = found
    # Checked here, where every route authenticates, so no route can forget it.
    if token.read_only and request.method not in READ_METHODS:
        raise Forbidden(
            f"this is a viewer token: it can read but not {request.method} "
            f"{request.url.path}; use a member or admin token"
        )
    return Auth(project=project, token=token)


AuthDep = Annotated[Auth, Depends(authenticate)]


def current_project(auth: AuthDep) -> Project:
    return auth.project


CurrentProject = Annotated[Project, Depends(current_project)]


def require_admin(auth: AuthDep) -> Auth:
    if not auth.token.is_admin:
        raise Forbidden("this action needs an admin token")
    return auth


AdminDep = Annotated[Auth, Depends(require_admin)]


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int


def page_params(
    settings: SettingsDep,
    limit: Annotated[int | None, Query(ge=1, description="Items per page.")] = None,
    offset: Annotated[int, Query(ge=0, le=2**62, description="Items to skip.")] = 0,
) -> PageParams:
    if limit is None:
        limit = settings.default_page_size
    if limit > settings.max_page_size:
        raise InvalidInput(f"limit must be at most {settings.max_page_size}", field="limit")
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]
