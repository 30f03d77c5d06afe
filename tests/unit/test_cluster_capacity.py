"""What no node can run: the shortfall in words, and which submissions a fixed cluster
refuses (every trial a sweep can make, named by the field it comes from)."""

from __future__ import annotations

from typing import Any

import pytest

from services.domain.capacity import ClusterCapacity, NodeResources
from services.domain.errors import InvalidInput
from services.specs import SweepSpec
from services.sweeps.resource_check import check_resources
from tests.support.specs import trial

CPU_ONLY = ClusterCapacity((NodeResources(2.0, 0.0),))
MIXED = ClusterCapacity((NodeResources(8.0, 0.0), NodeResources(2.0, 1.0)))


def test_the_shortfall_names_what_is_missing_and_the_largest_node() -> None:
    assert CPU_ONLY.shortfall(1, 1) == "no node has 1 GPU; largest node: 2 CPUs, 0 GPUs"
    assert CPU_ONLY.shortfall(64, 0) == "no node has 64 CPUs; largest node: 2 CPUs, 0 GPUs"
    assert CPU_ONLY.shortfall(4, 2) == "no node has 4 CPUs and 2 GPUs; largest node: 2 CPUs, 0 GPUs"
    assert CPU_ONLY.shortfall(2, 0) is None and CPU_ONLY.shortfall(0.5, 0) is None
    # Each alone is on some node, never both on one; the GPU node is the nearest.
    assert MIXED.shortfall(4, 1) == (
        "no node has 4 CPUs and 1 GPU together; largest node: 2 CPUs, 1 GPU"
    )
    assert MIXED.shortfall(8, 0) is None and MIXED.shortfall(2, 0.5) is None
    assert ClusterCapacity(()).shortfall(1, 0) == "the cluster has no node"


def refusal(spec: dict[str, Any], capacity: ClusterCapacity = CPU_ONLY, **kw: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        check_resources(SweepSpec.model_validate(spec), capacity, **kw)
    return info.value


@pytest.mark.parametrize(
    ("spec", "field", "fragment"),
    [
        ({"base": trial(resources={"gpus": 1})}, "base.resources.gpus", "no node has 1 GPU"),
        ({"base": trial(resources={"cpus": 64})}, "base.resources.cpus", "no node has 64 CPUs"),
        (
            {"base": trial(), "space": {"resources.gpus": [0, 1]}},
            "space.resources.gpus",
            "no node has 1 GPU",
        ),
        (
            {
                "base": trial(),
                "method": "random",
                "space": {"resources.cpus": {"distribution": "uniform", "low": 1, "high": 64}},
            },
            "space.resources.cpus",
            "no node has 64 CPUs",
        ),
        (
            {"base": trial(), "space": {"resources": [{"cpus": 1}, {"cpus": 1, "gpus": 1}]}},
            "space.resources",
            "no node has 1 GPU",
        ),
    ],
)
def test_a_fixed_cluster_refuses_any_trial_no_node_holds(
    spec: dict[str, Any], field: str, fragment: str
) -> None:
    error = refusal(spec)
    assert error.field == field
    assert fragment in error.message and "largest node: 2 CPUs, 0 GPUs" in error.message
    assert "LRLAB_CLUSTER_AUTOSCALING" in error.message


def test_a_job_names_the_field_of_its_own_body() -> None:
    error = refusal({"base": trial(resources={"gpus": 1})}, base_field="")
    assert error.field == "resources.gpus"


def test_what_fits_an_unknown_or_growing_cluster_passes() -> None:
    gpu = SweepSpec.model_validate({"base": trial(resources={"gpus": 1})})
    check_resources(gpu, None)  # not known yet: the scheduler marks it waiting later
    check_resources(gpu, ClusterCapacity(CPU_ONLY.nodes, may_grow=True))
    check_resources(gpu, MIXED)
    fits = {"base": trial(), "space": {"resources.cpus": [0.5, 1, 2]}}
    check_resources(SweepSpec.model_validate(fits), CPU_ONLY)
    # An unbounded distribution says nothing about its largest value.
    normal = {"distribution": "normal", "mu": 1, "sigma": 1}
    spec = {"base": trial(), "method": "random", "space": {"resources.cpus": normal}}
    check_resources(SweepSpec.model_validate(spec), CPU_ONLY)
