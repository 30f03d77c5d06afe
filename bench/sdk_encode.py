"""What the SDK's sender spends encoding a batch, per point, in each wire form.

    .venv/bin/python bench/sdk_encode.py [--calls 1000] [--repeats 300]

`--calls` log calls of 5 floats each (one batch of 5,000 points at the defaults), encoded
by the Batcher as packed float64 columns (what it sends), JSON columns and rows (its
fallbacks for older servers). CPU time of the encoding thread, the GIL hand-overs'
sleeps left out; medians and minima over `--repeats`, and the body's bytes per point.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sdk"))

import lrlab._batcher as batcher  # noqa: E402

NAMES = ("train_loss", "val_loss", "lr", "grad_norm", "val_accuracy")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=300)
    args = ap.parse_args()
    batcher.sleep = lambda _: None  # the GIL hand-overs wait; they cost no CPU
    b = batcher.Batcher(lambda body: None, batch_size=batcher.MAX_BATCH)
    now = time.time()
    entries = [
        (i, now + i * 1e-3, {n: 1.0 / (i + k + 1) for k, n in enumerate(NAMES)})
        for i in range(args.calls)
    ]
    points = args.calls * len(NAMES)
    print(f"{args.calls} log calls x {len(NAMES)} floats = {points} points, {args.repeats} repeats")
    print("| form | us/point (median) | us/point (min) | bytes/point |")
    print("|---|---:|---:|---:|")
    for form in ("packed", "json", "rows"):
        times = []
        for _ in range(args.repeats):
            t0 = time.thread_time()
            body, valid = b._encode_as(form, entries)
            times.append(time.thread_time() - t0)
        assert valid == points, (form, valid)
        med, low = statistics.median(times) / points, min(times) / points
        print(f"| {form} | {med * 1e6:.2f} | {low * 1e6:.2f} | {len(body) / points:.1f} |")
    b.abort()
    return 0


if __name__ == "__main__":
    sys.exit(main())
