"""Projects and their API tokens."""

from __future__ import annotations

import builtins
import hashlib
import secrets

from sqlalchemy import select

from services.domain.errors import Conflict, NotFound
from services.domain.records import ApiToken, IssuedToken, Project
from services.store.db import Database
from services.store.tables import ProjectRow, TokenRow, utcnow

TOKEN_PREFIX = "lrl_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _project(row: ProjectRow) -> Project:
    return Project(id=row.id, name=row.name, created_at=row.created_at)


def _token(row: TokenRow) -> ApiToken:
    return ApiToken(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        prefix=row.prefix,
        is_admin=row.is_admin,
        read_only=row.read_only,
        created_at=row.created_at,
    )


class ProjectRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, name: str) -> Project:
        with self._db.session() as s:
            if s.scalar(select(ProjectRow.id).where(ProjectRow.name == name)) is not None:
                raise Conflict(f"a project named {name!r} already exists", field="name")
            row = ProjectRow(name=name)
            s.add(row)
            s.flush()
            return _project(row)

    def get_by_name(self, name: str) -> Project | None:
        with self._db.session() as s:
            row = s.scalar(select(ProjectRow).where(ProjectRow.name == name))
            return _project(row) if row else None

    def list(self) -> list[Project]:
        with self._db.session() as s:
            return [_project(r) for r in s.scalars(select(ProjectRow).order_by(ProjectRow.id))]

    def issue_token(
        self, project_id: int, name: str, *, is_admin: bool = False, read_only: bool = False
    ) -> IssuedToken:
        if is_admin and read_only:
            raise ValueError("an admin token cannot be read-only")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._db.session() as s:
            if s.get(ProjectRow, project_id) is None:
                raise NotFound(f"project {project_id} not found")
            row = TokenRow(
                project_id=project_id,
                name=name,
                token_hash=hash_secret(secret),
                prefix=secret[: len(TOKEN_PREFIX) + 4],
                is_admin=is_admin,
                read_only=read_only,
            )
            s.add(row)
            s.flush()
            return IssuedToken(token=_token(row), secret=secret)

    def authenticate(self, secret: str) -> tuple[Project, ApiToken] | None:
        """The project and token behind a secret, or None if unknown or revoked."""
        with self._db.session() as s:
            row = s.scalar(select(TokenRow).where(TokenRow.token_hash == hash_secret(secret)))
            if row is None or row.revoked_at is not None:
                return None
            project = s.get(ProjectRow, row.project_id)
            if project is None:
                return None
            return _project(project), _token(row)

    def list_tokens(self, project_id: int) -> builtins.list[ApiToken]:
        with self._db.session() as s:
            rows = s.scalars(
                select(TokenRow)
                .where(TokenRow.project_id == project_id, TokenRow.revoked_at.is_(None))
                .order_by(TokenRow.id)
            )
            return [_token(r) for r in rows]

    def revoke_token(self, project_id: int, token_id: int) -> None:
        with self._db.session() as s:
            row = s.get(TokenRow, token_id)
            if row is None or row.project_id != project_id or row.revoked_at is not None:
                raise NotFound(f"token {token_id} not found")
            row.revoked_at = utcnow()
