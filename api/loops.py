"""The background loops of `lrlab serve`, and who wakes whom.

Each loop backs off while it has nothing to do (services.background), so whatever makes
work for a loop wakes it:
- the API, after storing work (a sweep, a job, a range test, a run, a cancel, a finished
  run): every loop (`Loops.wake`, the app's `wake`);
- the scheduler, after a trial started or ended or a sweep finished: the housekeeping (a
  range test ended), the live analyzer (a trial to watch or to finalize) and the notifier
  (a sweep end to announce);
- the housekeeping, after settling `lr: auto` sweeps (their trials are queued): the
  scheduler;
- the live analyzer, after asking a trial to stop: the scheduler; after recording
  analyses (findings): the notifier.
The scheduler and the housekeeping run together (not with --no-scheduler), the live
analyzer unless --no-analyzer, the notifier when a webhook allowlist is set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.alerts.notifier import Notifier
from services.analysis.live_analyzer import LiveAnalyzer
from services.domain.capacity import ClusterCapacity
from services.scheduling.housekeeping import Housekeeping
from services.scheduling.scheduler import Scheduler
from services.settings import Settings
from services.store import Store

if TYPE_CHECKING:  # ray is imported only where a scheduler runs
    from workers.ray_launcher import RayLauncher

Loop = Scheduler | Housekeeping | LiveAnalyzer | Notifier


def _wake(*loops: Loop | None) -> None:
    for loop in loops:
        if loop is not None:
            loop.wake()


@dataclass
class Loops:
    scheduler: Scheduler | None = None
    launcher: RayLauncher | None = None  # the scheduler's
    housekeeping: Housekeeping | None = None
    analyzer: LiveAnalyzer | None = None
    notifier: Notifier | None = None

    def capacity(self) -> ClusterCapacity | None:
        """The cluster's nodes as the scheduler last saw them (None without one, or
        before its first look): submissions no node can run are refused from it."""
        return None if self.scheduler is None else self.scheduler.capacity

    def wake(self) -> None:
        """New work was stored: every loop looks at once."""
        _wake(self.scheduler, self.housekeeping, self.analyzer, self.notifier)

    def wake_scheduler(self) -> None:
        _wake(self.scheduler)

    def wake_notifier(self) -> None:
        _wake(self.notifier)

    def trials_changed(self) -> None:
        """A trial started or ended, or a sweep finished (the scheduler's news)."""
        _wake(self.housekeeping, self.analyzer, self.notifier)

    def stop(self) -> None:
        if self.notifier is not None:
            self.notifier.stop(timeout=10)
        if self.analyzer is not None:
            self.analyzer.stop()
        if self.housekeeping is not None:
            self.housekeeping.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.launcher is not None:
            self.launcher.close()


def start_loops(store: Store, settings: Settings) -> Loops:
    """Every loop the settings ask for, wired and started."""
    loops = Loops()
    if settings.webhook_hosts:  # webhooks of the sweeps that ask for them
        loops.notifier = Notifier(store, settings)
    if settings.run_analyzer:
        loops.analyzer = LiveAnalyzer(
            store, settings, on_stop=loops.wake_scheduler, on_analysed=loops.wake_notifier
        )
    if settings.run_scheduler:
        loops.scheduler, loops.launcher = start_scheduler(store, settings, loops.trials_changed)
        loops.housekeeping = Housekeeping(
            store, run_silence_seconds=settings.run_silence_seconds, on_settled=loops.wake_scheduler
        )
        loops.housekeeping.start(idle_interval=settings.idle_interval_max_seconds)
    if loops.analyzer is not None:
        loops.analyzer.start()
    if loops.notifier is not None:
        loops.notifier.start()
    return loops


def start_scheduler(
    store: Store, settings: Settings, on_change: Callable[[], None] | None = None
) -> tuple[Scheduler, RayLauncher]:
    """The scheduler over a Ray launcher: local Ray unless LRLAB_RAY_ADDRESS names one."""
    from workers.ray_launcher import RayLauncher

    launcher = RayLauncher(settings.ray_address, settings.ray_num_cpus)
    scheduler = Scheduler(
        store,
        launcher,
        database_url=settings.resolved_database_url,
        checkpoint_root=settings.checkpoint_dir.resolve(),
        lease_seconds=settings.lease_seconds,
        on_change=on_change,
        cluster_may_grow=settings.cluster_may_grow,
    )
    scheduler.start(idle_interval=settings.idle_interval_max_seconds)
    return scheduler, launcher
