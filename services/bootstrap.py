"""First start of an embedded server: a default project and a local admin token on disk,
so the SDK, the CLI and `make demo` find a token without anyone copying one."""

from __future__ import annotations

import os
from pathlib import Path

from services.settings import Settings
from services.store import Store

DEFAULT_PROJECT = "default"


def _write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 from the start: the token is a credential.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")


def read_token_file(path: Path) -> str | None:
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        return None
    return secret or None


def ensure_local_admin(store: Store, settings: Settings) -> str:
    """The admin token in the token file, issuing (and saving) one if it is missing or no
    longer valid for this database."""
    path = settings.admin_token_file
    secret = read_token_file(path)
    if secret is not None:
        found = store.projects.authenticate(secret)
        if found is not None and found[1].is_admin:
            return secret
    with store.unit_of_work():
        found_project = store.projects.get_by_name(DEFAULT_PROJECT)
        project = found_project or store.projects.create(DEFAULT_PROJECT)
        issued = store.projects.issue_token(project.id, "local admin", is_admin=True)
    _write_secret(path, issued.secret)
    return issued.secret
