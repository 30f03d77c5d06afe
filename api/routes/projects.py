"""The caller's project and its tokens; admins create projects."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import AdminDep, AuthDep, CurrentProject, StoreDep
from api.schemas import (
    IssuedTokenOut,
    ProjectCreate,
    ProjectCreated,
    ProjectOut,
    TokenCreate,
    TokenOut,
)
from services.domain.records import IssuedToken

router = APIRouter(tags=["projects"])
TokenId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _issued(issued: IssuedToken) -> IssuedTokenOut:
    return IssuedTokenOut(token=TokenOut.model_validate(issued.token), secret=issued.secret)


@router.get("/project", response_model=ProjectOut)
def get_project(project: CurrentProject) -> ProjectOut:
    """The project the token belongs to: everything it sees is scoped to it."""
    return ProjectOut.model_validate(project)


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(project: CurrentProject, store: StoreDep) -> list[TokenOut]:
    return [TokenOut.model_validate(t) for t in store.projects.list_tokens(project.id)]


@router.post("/tokens", response_model=IssuedTokenOut, status_code=201)
def create_token(body: TokenCreate, auth: AuthDep, store: StoreDep) -> IssuedTokenOut:
    """A new member or viewer (read-only) token for the caller's project. The secret is in
    this answer only."""
    read_only = body.role == "viewer"
    return _issued(store.projects.issue_token(auth.project.id, body.name, read_only=read_only))


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: TokenId, project: CurrentProject, store: StoreDep) -> None:
    store.projects.revoke_token(project.id, token_id)


@router.get("/projects", response_model=list[ProjectOut])
def list_projects(_: AdminDep, store: StoreDep) -> list[ProjectOut]:
    return [ProjectOut.model_validate(p) for p in store.projects.list()]


@router.post("/projects", response_model=ProjectCreated, status_code=201)
def create_project(body: ProjectCreate, _: AdminDep, store: StoreDep) -> ProjectCreated:
    """A new project with its first admin token (shown once)."""
    with store.unit_of_work():  # a project nobody can use must not outlive a failed step
        project = store.projects.create(body.name)
        issued = store.projects.issue_token(project.id, "admin", is_admin=True)
    return ProjectCreated(project=ProjectOut.model_validate(project), token=_issued(issued))
