"""The buffer behind `Run.log`: the training loop appends, a background thread sends.

`add` only appends a (step, time, metrics) tuple to a deque and bumps a counter: no lock,
no I/O, no JSON. The sender thread wakes every `flush_interval` seconds or once
`batch_size` points are waiting, turns entries into one JSON batch of columns (per metric
name, a list of steps and its values and times packed as base64 float64s) and posts it.
A server that predates packed columns gets JSON lists from then on, one that predates
columns gets rows. A batch that fails for a passing reason (server down, 5xx, 429) is kept
and sent again, with backoff, until it is stored: the store keeps one point per (trial,
name, step), so a batch that arrives twice changes nothing. A batch the server refuses
for good (422: a bad name; 404: the run is gone) is dropped and counted, with the
server's message kept.

The buffer holds at most `max_points` points not yet stored. When it is full (the server
has been unreachable for a while), `when_full` decides:
- "block" (default): `add` waits until batches are stored; nothing is lost;
- "drop_oldest": the oldest points waiting are dropped and counted;
- "raise": `add` raises BufferFull.
"""

from __future__ import annotations

import json
import logging
import math
import random
import sys
import threading
from array import array
from binascii import b2a_base64
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from time import monotonic, sleep, thread_time
from typing import Any, Literal

from lrlab.errors import (
    ConnectionFailed,
    LrlabError,
    PayloadTooLarge,
    ServerError,
)

_dumps = json.dumps
_BIG_ENDIAN = sys.byteorder == "big"  # array("d") is in the host's order; the server's is little

log = logging.getLogger("lrlab")

WhenFull = Literal["block", "drop_oldest", "raise"]
Form = Literal["packed", "json", "rows"]  # how batches go: the newest the server takes
Entry = tuple[int, float, Mapping[str, Any]]
_NON_FINITE = {math.inf: '"Infinity"', -math.inf: '"-Infinity"'}
MAX_NAME = 200
MAX_BATCH = 20_000  # points in one request at most (the server's default limit is 50,000)
# batch_size defaults to 5,000: a request costs the sender ~2 ms of CPU whatever its size
# (HTTP, the loopback's kernel work), against ~0.2 us a point to encode; a loop logging
# 5 metrics every millisecond fills a batch each second, the flush interval.
YIELD_EVERY = 64  # log calls encoded between two GIL hand-overs (rows)
YIELD_POINTS = 1024  # points encoded between two GIL hand-overs (columns)
YIELD_SECONDS = 50e-6


class BufferFull(LrlabError):
    """Run.log with when_full="raise" on a full buffer."""


@dataclass
class BatcherStats:
    sent_points: int = 0
    sent_batches: int = 0
    dropped_points: int = 0  # refused by the server, invalid, or dropped when full
    retries: int = 0
    sender_cpu_seconds: float = 0.0  # CPU the sender thread has used (encoding, HTTP)
    errors: list[str] = field(default_factory=list)  # the first few reasons, for finish()


def _valid_name(name: Any) -> bool:
    return (
        isinstance(name, str)
        and 0 < len(name) <= MAX_NAME
        and not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in name)
    )


class Batcher:
    def __init__(
        self,
        post: Callable[[bytes], None],
        *,
        batch_size: int = 5000,
        flush_interval: float = 1.0,
        max_points: int = 500_000,
        when_full: WhenFull = "block",
        max_backoff: float = 2.0,
        name: str = "lrlab-run",
    ) -> None:
        if when_full not in ("block", "drop_oldest", "raise"):
            raise ValueError("when_full must be 'block', 'drop_oldest' or 'raise'")
        if not 1 <= batch_size <= MAX_BATCH or max_points < batch_size:
            raise ValueError(f"need 1 <= batch_size <= max_points and {MAX_BATCH}")
        self.post = post
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_points = max_points
        self.when_full = when_full
        self.max_backoff = max_backoff
        self.stats = BatcherStats()
        self._entries: deque[Entry] = deque()
        # Written by the producer only: points added. Written by the sender only: points
        # settled (stored or dropped). Single writers, so no lock is needed for either.
        self._added = 0
        self._settled = 0
        self._taken = 0  # points the sender took from the deque (sender only)
        self._dropped_waiting = 0  # points drop_oldest took from it (under _progress)
        self._flush_target = 0  # flush(): send at once every point added up to here
        self._wake_at = batch_size
        self._wake = threading.Event()
        self._progress = threading.Condition()
        self._abort = threading.Event()
        self._form: Form = "packed"  # until a server says it takes an older form only
        self._heads: dict[Any, str] = {}  # name -> the JSON a row of it starts with
        self._columns: dict[Any, bytes] = {}  # name -> the JSON a series of it starts with
        self._invalid_names: set[Any] = set()
        self._warned_full = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # -- producer side (the training loop) ---------------------------------------------
    def add(self, step: int, time: float, metrics: Mapping[str, Any]) -> None:
        n = len(metrics)
        if self._added + n - self._settled > self.max_points:
            self._make_room(n)
        self._entries.append((step, time, metrics))
        self._added += n
        if self._added >= self._wake_at:
            self._wake_at = self._added + self.batch_size
            self._wake.set()

    @property
    def pending(self) -> int:
        """Points added and not yet stored or dropped."""
        return self._added - self._settled

    def _make_room(self, n: int) -> None:
        if self.when_full == "raise":
            raise BufferFull(f"{self.pending} points wait to be sent (max_points reached)")
        if not self._warned_full:
            self._warned_full = True
            log.warning(
                "lrlab: %d points wait to be sent (is the server down?); when_full=%s",
                self.pending,
                self.when_full,
            )
        if self.when_full == "drop_oldest":
            self._drop_oldest(n)
            return
        self._wake.set()
        with self._progress:
            while self._added + n - self._settled > self.max_points:
                if not self._thread.is_alive():
                    raise BufferFull("the sender thread has stopped; the buffer cannot drain")
                self._progress.wait(0.5)

    def _drop_oldest(self, n: int) -> None:
        dropped = 0
        while self._added + n - self._settled - dropped > self.max_points:
            try:
                entry = self._entries.popleft()
            except IndexError:
                break  # what is left is in flight
            dropped += len(entry[2])
        # The sender owns _settled; hand the count over through its lock.
        with self._progress:
            self._settled += dropped
            self._dropped_waiting += dropped
            self.stats.dropped_points += dropped

    # -- control ----------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every point added so far is stored (or dropped); False on timeout."""
        target = self._added
        self._flush_target = max(self._flush_target, target)
        self._wake.set()
        with self._progress:
            return self._progress.wait_for(lambda: self._settled >= target, timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then stop the thread. False if points were still unsent at the timeout
        (the thread keeps trying in the background; `close` may be called again)."""
        if not self.flush(timeout):
            return False
        self._abort.set()
        self._wake.set()
        self._thread.join(timeout)
        return True

    def abort(self) -> None:
        """Stop at once, leaving whatever is unsent."""
        self._abort.set()
        self._wake.set()

    # -- sender side ------------------------------------------------------------------
    def _loop(self) -> None:
        # Full batches go when they are full; the rest when the interval is up or a
        # flush asks, and then only what was there at that moment: points that keep
        # arriving while a batch is sent wait for the next full batch or interval, not
        # a trickle of tiny requests.
        due = monotonic() + self.flush_interval
        while not self._abort.is_set():
            self._wake.wait(max(0.0, due - monotonic()))
            self._wake.clear()
            timer = monotonic() >= due
            until = max(self._flush_target, self._added if timer else 0)
            while self._entries and not self._abort.is_set():
                gone = self._taken + self._dropped_waiting
                if gone >= until and self._added - gone < self.batch_size:
                    break
                self._send(self._take())
            if timer:
                due = monotonic() + self.flush_interval

    def _take(self) -> list[Entry]:
        taken: list[Entry] = []
        points = 0
        # A backlog (the server was slow or away) goes in larger requests, up to
        # MAX_BATCH: fewer round trips to catch up (a 413 splits them if need be).
        while points < MAX_BATCH:
            try:
                entry = self._entries.popleft()
            except IndexError:
                break
            taken.append(entry)
            points += len(entry[2])
        self._taken += points
        return taken

    def _settle(self, points: int, stored: bool) -> None:
        with self._progress:
            self._settled += points
            if stored:
                self.stats.sent_points += points
                self.stats.sent_batches += 1
            else:
                self.stats.dropped_points += points
            self.stats.sender_cpu_seconds = thread_time()  # _settle runs on the sender
            self._progress.notify_all()

    def _record(self, reason: str) -> None:
        # The first few reasons are logged and kept; a loop repeating one mistake would
        # otherwise flood the log.
        if len(self.stats.errors) < 20:
            log.warning("lrlab: %s", reason)
            self.stats.errors.append(reason)

    def _send(self, entries: list[Entry]) -> None:
        total = sum(len(e[2]) for e in entries)
        form = self._form
        body, valid = self._encode_as(form, entries)
        if not valid:
            self._settle(total, stored=False)
            return
        attempt = 0
        while not self._abort.is_set():
            try:
                self.post(body)
            except PayloadTooLarge as exc:
                if len(entries) == 1:
                    self._record(f"a log call too large for the server, dropped: {exc}")
                    self._settle(total, stored=False)
                    return
                half = len(entries) // 2
                self._send(entries[:half])
                self._send(entries[half:])
                return
            except (ConnectionFailed, ServerError) as exc:
                self._backoff(attempt, exc)
                attempt += 1
                continue
            except LrlabError as exc:
                if exc.status_code == 429:
                    self._backoff(attempt, exc)
                    attempt += 1
                    continue
                older = _older_form(form, exc)
                if older is not None:
                    log.info("lrlab: the server takes metric points as %s only", older)
                    self._form = form = older
                    body, valid = self._encode_as(form, entries)
                    continue
                self._record(f"a batch of {total} points was refused: {exc}")
                self._settle(total, stored=False)
                return
            dropped = total - valid
            self._settle(valid, stored=True)
            if dropped:
                self._settle(dropped, stored=False)
            return

    def _backoff(self, attempt: int, exc: Exception) -> None:
        self.stats.retries += 1
        if attempt == 0:
            log.info("lrlab: a metric batch will be sent again: %s", exc)
        delay = min(self.max_backoff, 0.1 * 2**attempt) * (0.5 + 0.5 * random.random())
        self._abort.wait(delay)

    def _valid(self, name: Any) -> bool:
        """Whether `name` can be sent; an invalid one is reported once."""
        if name in self._invalid_names:
            return False
        if _valid_name(name):
            return True
        self._invalid_names.add(name)
        self._record(f"metric name {name!r} is not valid; its points are dropped")
        return False

    def _head(self, name: Any) -> str | None:
        """The JSON text a point of `name` starts with; None (warned once) if invalid."""
        head = self._heads.get(name)
        if head is None and self._valid(name):
            head = self._heads[name] = f'{{"name":{_dumps(name)},"step":'
        return head

    def _column(self, name: Any) -> bytes | None:
        """The JSON text a series of `name` starts with; None (warned once) if invalid."""
        head = self._columns.get(name)
        if head is None and self._valid(name):
            head = self._columns[name] = f'{{"name":{_dumps(name)},'.encode()
        return head

    def _encode_as(self, form: Form, entries: list[Entry]) -> tuple[bytes, int]:
        """The JSON body of a batch in `form`, and how many points it holds."""
        if form == "rows":
            return self._encode_rows(entries)
        return self._encode(entries, packed=form == "packed")

    def _encode(self, entries: list[Entry], packed: bool = True) -> tuple[bytes, int]:
        """The JSON body of a batch as columns, and how many points it holds. Log calls
        with the same names (in the same order) make one series per name; its values and
        times are packed as float64s (or, `packed` False, written by json.dumps) a whole
        column at once, in C, not point by point: this runs on the same GIL as the
        training loop. Invalid names and values are dropped here."""
        parts: list[bytes] = []
        valid = 0
        start = points = 0
        for end, entry in enumerate(entries, 1):
            points += len(entry[2])
            if points >= YIELD_POINTS:
                valid += self._encode_columns(entries[start:end], parts, packed)
                start, points = end, 0
                # Hand the GIL to the training thread: back from a torch call that released
                # it, it would otherwise wait for this loop up to a switch interval (5 ms).
                # sleep(0) would take the GIL straight back; a short real sleep lets go.
                sleep(YIELD_SECONDS)
        if start < len(entries):
            valid += self._encode_columns(entries[start:], parts, packed)
        return b'{"series":[' + b",".join(parts) + b"]}", valid

    def _encode_columns(self, entries: list[Entry], parts: list[bytes], packed: bool) -> int:
        groups: dict[tuple[Any, ...], list[Entry]] = {}
        for entry in entries:
            names = tuple(entry[2])
            group = groups.get(names)
            if group is None:
                groups[names] = [entry]
            else:
                group.append(entry)
        valid = 0
        columns = self._columns
        write_values, values_key = (_f64, _F64_VALUES) if packed else (_json, _JSON_VALUES)
        for names, group in groups.items():
            steps = [e[0] for e in group]
            times = [e[1] for e in group]
            tail = _tail(steps, times, packed)
            for name, raws in zip(
                names, zip(*[e[2].values() for e in group], strict=True), strict=True
            ):
                head = columns.get(name) or self._column(name)
                if head is None:
                    continue
                try:
                    values = write_values(raws)
                except Exception:  # a value float() may take or refuse (a str, a tensor)
                    valid += self._encode_column(head, name, steps, raws, times, parts, packed)
                    continue
                parts.append(head + values_key + values + tail)
                valid += len(raws)
        return valid

    def _encode_column(
        self,
        head: bytes,
        name: Any,
        steps: list[int],
        raws: tuple[Any, ...],
        times: list[float],
        parts: list[bytes],
        packed: bool,
    ) -> int:
        """One series point by point: values float() refuses are dropped (and reported)."""
        kept: list[tuple[int, float, float]] = []
        for step, raw, at in zip(steps, raws, times, strict=True):
            value = self._float(name, step, raw)
            if value is not None:
                kept.append((step, value, at))
        if kept:
            kept_steps, values, kept_times = zip(*kept, strict=True)
            if packed:
                column = _F64_VALUES + _f64(values)
            else:
                column = _JSON_VALUES + f"[{','.join(map(_text, values))}]".encode()
            parts.append(head + column + _tail(kept_steps, kept_times, packed))
        return len(kept)

    def _encode_rows(self, entries: Iterable[Entry]) -> tuple[bytes, int]:
        """The JSON body of a batch as rows, for servers without columns. Written out by
        hand, not with json.dumps over dicts: several times cheaper. Invalid names and
        values are dropped here."""
        parts: list[str] = []
        append = parts.append
        heads = self._heads
        for count, (step, time, metrics) in enumerate(entries, 1):
            if not count % YIELD_EVERY:
                sleep(YIELD_SECONDS)  # the GIL for the training thread, as in _encode
            mid = f'{step},"value":'
            tail = f',"time":{time:.3f}}}'  # ms: repr() of a 17-digit float costs ~1 us
            for name, raw in metrics.items():
                head = heads.get(name) or self._head(name)
                if head is None:
                    continue
                value = self._float(name, step, raw)
                if value is not None:
                    append(head + mid + _text(value) + tail)
        return ('{"points":[' + ",".join(parts) + "]}").encode(), len(parts)

    def _float(self, name: Any, step: int, raw: Any) -> float | None:
        """float(raw); None (reported) if float() refuses it."""
        try:
            return float(raw)
        except Exception:  # a string, None, a tensor of several elements, 10**400...
            self._record(f"{name} at step {step}: {raw!r} is not a number; dropped")
            return None


_F64_VALUES = b'"values_f64":"'
_JSON_VALUES = b'"values":'


def _text(value: float) -> str:
    """The JSON text of a float: non-finite ones as the strings the server takes."""
    # x - x is 0.0 for every finite float, NaN for NaN and the infinities.
    return repr(value) if value - value == 0.0 else _NON_FINITE.get(value, '"NaN"')


def _f64(numbers: Sequence[Any]) -> bytes:
    """Base64 of `numbers` as little-endian float64s (what values_f64 and times_f64 hold),
    converted in C; raises for an item that is not a float, an int or like them."""
    packed = array("d", numbers)
    if _BIG_ENDIAN:
        packed.byteswap()
    return b2a_base64(packed, newline=False)


def _json(numbers: Sequence[Any]) -> bytes:
    """A JSON list of finite floats; raises for anything else (NaN too)."""
    return _dumps(list(map(float, numbers)), allow_nan=False).encode()


def _tail(steps: Sequence[int], times: Sequence[float], packed: bool) -> bytes:
    """The end of a series' JSON: its steps and times, then the closing brace."""
    if packed:
        return b'","steps":%b,"times_f64":"%b"}' % (_dumps(steps).encode(), _f64(times))
    return f',"steps":{_dumps(steps)},"times":[{_ms(times)}]}}'.encode()


def _ms(times: Sequence[float]) -> str:
    """Unix times to the ms, comma-separated: one %-format over them all is several times
    cheaper than round() and repr() of each (a 13-digit float's repr is slow)."""
    return ("%.3f," * len(times) % tuple(times))[:-1]


def _older_form(form: Form, exc: LrlabError) -> Form | None:
    """The form to fall back to after `exc`, a 422 from a server that predates `form`: one
    without packed columns finds values_f64 (or times_f64) not permitted, one without
    columns series itself; None if `exc` is not that."""
    if exc.status_code != 422 or form == "rows":
        return None
    unknown = {d.field for d in exc.details if d.type == "extra_forbidden"}
    if "series" in unknown:
        return "rows"
    if form == "packed" and any(f.endswith((".values_f64", ".times_f64")) for f in unknown):
        return "json"
    return None
