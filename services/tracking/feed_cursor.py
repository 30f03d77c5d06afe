"""Where a live stream stands, as the compact string sent in each event's `id:`.

    v1;f=<finding cursor>;t=<trial>:<step>:<status>,...;d=<first>-<last>,<trial>,...

`t` lists the trials the stream has seen start: every point at or below `step` was sent
(-1: none yet) and `status` (one letter) is the last status sent. `d` lists the trials
that are over: terminal, every point and their final status sent; they are never read
again and, as id ranges, cost a few characters however many there are. A trial in
neither is still queued as far as the stream has said. `f` is the findings cursor
(FindingRepository's "<microseconds>-<id>"), absent before the first finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.domain.errors import InvalidInput
from services.domain.finding_records import FindingCursor
from services.domain.records import TrialStatus

VERSION = "v1"
NO_STEP = -1
MAX_DONE = 1_000_000  # more ended trials than any sweep holds: not an id we sent
_CODE = {
    TrialStatus.QUEUED: "q",
    TrialStatus.RUNNING: "r",
    TrialStatus.SUCCEEDED: "s",
    TrialStatus.FAILED: "f",
    TrialStatus.PRUNED: "p",
    TrialStatus.CANCELLED: "c",
}
_STATUS = {code: status for status, code in _CODE.items()}


@dataclass
class TrialMark:
    step: int = NO_STEP  # every point at or below this step was sent
    status: TrialStatus = TrialStatus.QUEUED  # the last status sent


@dataclass
class StreamCursor:
    trials: dict[int, TrialMark] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)
    findings: FindingCursor | None = None

    def mark(self, trial_id: int) -> TrialMark:
        return self.trials.setdefault(trial_id, TrialMark())

    def finish(self, trial_id: int) -> None:
        self.trials.pop(trial_id, None)
        self.done.add(trial_id)

    def encode(self) -> str:
        parts = [VERSION]
        if self.findings is not None:
            parts.append(f"f={self.findings.encode()}")
        if self.trials:
            marks = (f"{t}:{m.step}:{_CODE[m.status]}" for t, m in sorted(self.trials.items()))
            parts.append("t=" + ",".join(marks))
        if self.done:
            parts.append("d=" + ",".join(_ranges(sorted(self.done))))
        return ";".join(parts)

    @classmethod
    def decode(cls, token: str | None, source: str = "Last-Event-ID") -> StreamCursor:
        """The cursor of an id this stream sent; a 422 naming `source` for anything else."""
        if not token:
            return cls()
        try:
            return _decode(token)
        except (ValueError, KeyError) as exc:
            raise InvalidInput(
                f"not an event id of an lrlab stream ({exc}); resume with the id of the last "
                "event received, or connect without one to start over",
                field=source,
            ) from exc


def _ranges(ids: list[int]) -> list[str]:
    out: list[str] = []
    start = prev = ids[0]
    for i in [*ids[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return out


def _int(text: str, minimum: int = 0) -> int:
    value = int(text)
    if value < minimum:
        raise ValueError(f"{value} is out of range")
    return value


def _decode(token: str) -> StreamCursor:
    version, *parts = token.split(";")
    if version != VERSION:
        raise ValueError(f"unknown version {version!r}")
    cursor = StreamCursor()
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not value:
            raise ValueError(f"bad part {part!r}")
        if key == "f":
            cursor.findings = FindingCursor.decode(value)
        elif key == "t":
            for entry in value.split(","):
                trial, step, code = entry.split(":")
                cursor.trials[_int(trial, 1)] = TrialMark(_int(step, NO_STEP), _STATUS[code])
        elif key == "d":
            for entry in value.split(","):
                first, _, last = entry.partition("-")
                lo, hi = _int(first, 1), _int(last or first, 1)
                if hi < lo or len(cursor.done) + hi - lo >= MAX_DONE:
                    raise ValueError(f"bad range {entry!r}")
                cursor.done.update(range(lo, hi + 1))
        else:
            raise ValueError(f"unknown part {key!r}")
    return cursor
