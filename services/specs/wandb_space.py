"""The parameters section of a W&B sweep file, flattened into a native search space.

Each parameter (nested groups included) becomes one entry at the trial-spec path its name
stands for (`wandb_names`), in its native form (`wandb_params`), with its schedule or
optimizer names read as lrlab's entries (`wandb_entries`). Where each came from in the
file is kept, so that every later error points at it.
"""

from __future__ import annotations

from typing import Any

from services.specs.params import ConstantParam, ValuesParam
from services.specs.wandb_entries import read_entries
from services.specs.wandb_names import native_path
from services.specs.wandb_params import Loc, Problems, WandbParam, wandb_param

__all__ = ["Space"]

_ENTRY_PATHS = ("schedule", "schedule.name", "optimizer", "optimizer.name")
# A warmup the sweep sets itself wins over the one a name implies (constant_with_warmup).
_WARMUP_PATHS = {"schedule.warmup_steps", "schedule.warmup_fraction"}


class Space:
    """The parameters section, flattened: native path -> param, its place and name."""

    def __init__(self, method: str, problems: Problems) -> None:
        self.method = method
        self.problems = problems
        self.params: dict[str, WandbParam] = {}
        self.where: dict[str, Loc] = {}
        self.names: dict[str, str] = {}

    def read(self, config: dict[str, Any]) -> None:
        parameters = config.get("parameters")
        if not isinstance(parameters, dict) or not parameters:
            got = "nothing" if parameters is None else f"{parameters!r:.80}"
            message = f"parameters is required: a mapping from names to parameters (got {got})"
            self.problems.add(("parameters",), message)
            return
        self._group(parameters, ("parameters",), "")
        self._read_entries()
        if set(self.params) >= _WARMUP_PATHS:  # each trial would have both
            second = max(_WARMUP_PATHS, key=lambda path: list(self.params).index(path))
            first = (_WARMUP_PATHS - {second}).pop()
            message = (
                f"{self.names[second]} and {self.names[first]} both set the warmup (as a share "
                "of the budget and in steps); keep one"
            )
            self.problems.add(self.where[second], message)

    def _group(self, parameters: dict[str, Any], loc: Loc, prefix: str) -> None:
        for key, node in parameters.items():
            name, at = f"{prefix}.{key}" if prefix else str(key), (*loc, key)
            if isinstance(node, dict) and "parameters" in node:
                self._nested(node, at, name)
                continue
            param = wandb_param(node, at, self.method, self.problems)
            if param is not None:
                self._add(name, at, param)

    def _nested(self, node: dict[str, Any], at: Loc, name: str) -> None:
        for key in node:
            if key != "parameters":
                message = f"unknown key {key!r} for a group of parameters; valid: parameters"
                self.problems.add((*at, key), message)
        inner = node["parameters"]
        if isinstance(inner, dict) and inner:
            self._group(inner, (*at, "parameters"), name)
        else:
            message = f"a group's parameters is a non-empty mapping (got {inner!r:.80})"
            self.problems.add((*at, "parameters"), message)

    def _add(self, name: str, at: Loc, param: WandbParam) -> None:
        if isinstance(param, ValuesParam):
            values = list(param.values)
        else:
            values = [param.value] if isinstance(param, ConstantParam) else []
        self._put(native_path(name, values), name, at, param)

    def _put(self, path: str, name: str, at: Loc, param: WandbParam) -> None:
        if path in self.params:
            message = f"{name} and {self.names[path]} both set {path}; keep one"
            self.problems.add(at, message)
            return
        self.params[path], self.where[path], self.names[path] = param, at, name

    def _read_entries(self) -> None:
        """Schedule and optimizer names as lrlab's entries, in place (the order of the
        parameters is the grid's order). A name that implies fields moves its parameter
        from `schedule.name` to `schedule`: they need whole entries."""
        own_warmup = _WARMUP_PATHS & set(self.params)
        drop = {"warmup_fraction"} if own_warmup else set()
        params, where, names = self.params, self.where, self.names
        self.params, self.where, self.names = {}, {}, {}
        for path, param in params.items():
            at, name = where[path], names[path]
            if path in _ENTRY_PATHS:
                path, param = read_entries(path, param, at, self.problems, drop)
            self._put(path, name, at, param)
