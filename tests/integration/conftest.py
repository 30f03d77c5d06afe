"""Fixtures of the integration tests that train on Ray."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.scheduling.scheduler import Scheduler
from services.store import Store
from tests.support.waiting import wait_until


@pytest.fixture
def ray_scheduler(ray_local: None, store: Store, tmp_path: Path) -> Iterator[Scheduler]:
    """A scheduler over the Ray launcher (the session's local Ray), on `store`."""
    from workers.ray_launcher import RayLauncher

    launcher = RayLauncher()
    sched = Scheduler(
        store,
        launcher,
        database_url=store.db.url,
        checkpoint_root=tmp_path / "checkpoints",
        lease_seconds=60,
        cancel_grace_seconds=5,
    )
    yield sched
    launcher.close()

    def drained() -> bool:
        launcher.poll()
        return not launcher.running()

    # Cancelled attempts drained, so that the next test starts with an idle cluster.
    wait_until(drained, "the Ray launcher's cancelled attempts ended", 30)
