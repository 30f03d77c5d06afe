"""Where the client points and which token it sends: arguments, then the environment.

url: the argument, else LRLAB_URL, else the default `lrlab serve` address.
token: the argument, else LRLAB_TOKEN, else the admin token a local `lrlab serve` wrote
(LRLAB_DATA_DIR/admin-token, default ./.lrlab/admin-token), else none.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8765"


def resolve_url(url: str | None) -> str:
    return (url or os.environ.get("LRLAB_URL") or DEFAULT_URL).rstrip("/")


def resolve_token(token: str | None) -> str | None:
    if token:
        return token
    from_env = os.environ.get("LRLAB_TOKEN")
    if from_env:
        return from_env
    local = Path(os.environ.get("LRLAB_DATA_DIR") or ".lrlab") / "admin-token"
    try:
        return local.read_text().strip() or None
    except OSError:
        return None
