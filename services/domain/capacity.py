"""What the cluster's nodes offer, as the scheduler last saw it: whether any node could
ever run a trial that asks for so many CPUs and GPUs, and in words why not."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClusterCapacity", "NodeResources", "amount"]

# Ray counts resources in units of 1e-4: a request within this of a node's total fits.
_EPS = 1e-4


def amount(n: float, unit: str) -> str:
    """'1 GPU', '2 CPUs', '0 GPUs', '0.5 GPU'."""
    return f"{n:g} {unit}" if 0 < n <= 1 else f"{n:g} {unit}s"


@dataclass(frozen=True)
class NodeResources:
    cpus: float
    gpus: float

    def holds(self, cpus: float, gpus: float) -> bool:
        return cpus <= self.cpus + _EPS and gpus <= self.gpus + _EPS

    def __str__(self) -> str:
        return f"{amount(self.cpus, 'CPU')}, {amount(self.gpus, 'GPU')}"


@dataclass(frozen=True)
class ClusterCapacity:
    """The alive nodes, and whether the cluster may grow (an autoscaling cluster): a trial
    no node holds is refused at submission on a fixed cluster, and waits on one that may
    grow."""

    nodes: tuple[NodeResources, ...]
    may_grow: bool = False

    def shortfall(self, cpus: float, gpus: float) -> str | None:
        """None when some node holds a trial of these resources; else why none does, as
        "no node has 1 GPU; largest node: 2 CPUs, 0 GPUs"."""
        if any(node.holds(cpus, gpus) for node in self.nodes):
            return None
        if not self.nodes:
            return "the cluster has no node"
        most_cpus = max(node.cpus for node in self.nodes)
        most_gpus = max(node.gpus for node in self.nodes)
        missing = []
        if cpus > most_cpus + _EPS:
            missing.append(amount(cpus, "CPU"))
        if gpus > most_gpus + _EPS:
            missing.append(amount(gpus, "GPU"))
        # Either alone is on some node, but not both on one.
        want = " and ".join(missing) or f"{amount(cpus, 'CPU')} and {amount(gpus, 'GPU')} together"
        # The node nearest to what is asked: most GPUs when GPUs are asked, else most CPUs.
        largest = max(self.nodes, key=lambda n: (n.gpus, n.cpus) if gpus > 0 else (n.cpus, n.gpus))
        return f"no node has {want}; largest node: {largest}"
