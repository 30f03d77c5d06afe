"""What commands print: rich tables for people, plain JSON (`--json`) for scripts.

JSON output is strict: non-finite numbers become "NaN", "Infinity", "-Infinity", as the
API writes them; datetimes are ISO 8601 strings.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

STATUS_STYLE = {
    "queued": "dim",
    "running": "cyan",
    "succeeded": "green",
    "finished": "green",
    "failed": "red",
    "pruned": "yellow",
    "cancelled": "magenta",
}


def jsonable(value: Any) -> Any:
    """Plain JSON types only, non-finite floats spelt as strings."""
    if isinstance(value, BaseModel):
        return jsonable(value.model_dump(mode="python"))
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def dumps(value: Any, *, indent: int | None = 2) -> str:
    return json.dumps(jsonable(value), indent=indent, allow_nan=False)


class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False)
        self.errors = Console(stderr=True, highlight=False)

    def emit(self, data: Any, render: Callable[[Console], None]) -> None:
        """JSON of `data` with --json; otherwise whatever `render` draws."""
        if self.as_json:
            sys.stdout.write(dumps(data) + "\n")
            sys.stdout.flush()
        else:
            render(self.console)

    def line(self, data: Any) -> None:
        """One JSON object per line (streams)."""
        sys.stdout.write(dumps(data, indent=None) + "\n")
        sys.stdout.flush()


def status_text(status: str) -> str:
    style = STATUS_STYLE.get(status, "")
    return f"[{style}]{status}[/]" if style else status


def fmt_number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def fmt_params(params: Mapping[str, Any], width: int = 60) -> str:
    text = ", ".join(f"{k}={_short(v)}" for k, v in params.items())
    return text if len(text) <= width else text[: width - 1] + "…"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, Mapping):
        inner = ",".join(f"{k}={_short(v)}" for k, v in value.items())
        return "{" + inner + "}"
    return str(value)


def table(title: str | None, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    out = Table(title=title, title_justify="left", header_style="bold")
    for header in headers:
        out.add_column(header)
    for row in rows:
        out.add_row(*(c if isinstance(c, str) else fmt_number(c) for c in row))
    return out
