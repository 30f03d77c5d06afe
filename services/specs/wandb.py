"""W&B sweep files: a Weights & Biases sweep configuration read as a native SweepSpec.

Top-level keys:
- `method` (grid, random or bayes), `metric` {name, goal}, `parameters`, `run_cap` (->
  max_trials), `name`, `description`, `early_terminate` (-> early_stop, below).
- `program`, `command`, `entity`, `project`, `job`, `image_uri`, `controller`,
  `apiVersion`, `kind` are accepted and ignored: lrlab trains the trial spec itself (there
  is no script to launch), and the lrlab project is the one of the request's token.
- lrlab's own: `base`, the native trial spec every trial starts from (default
  `{task: digits}`), plus `max_concurrent` and `seed` (the sampler's seed) as in a native
  spec. Any other key is an error, as are the W&B features lrlab lacks (metric.target,
  metric.impute, metrics, scheduler, categorical probabilities, method custom).

Parameters: see `wandb_params` (forms, distributions, inference) and `wandb_names` (which
trial-spec field a name sets). Sweeping `epochs` or `max_steps` sets the base's budget to
that kind, since a trial has exactly one.

early_terminate {type: hyperband, min_iter | max_iter and s, eta (3), strict} becomes
early_stop {pruner: hyperband, min_resource, max_resource, brackets, reduction_factor};
`strict` is accepted and ignored. An iteration is one evaluation of the sweep's metric.

Every error is located in the file: `parameters.learning_rate.min`, `run_cap`, ...
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from services.specs.common import SpecError
from services.specs.grid import expand_grid
from services.specs.params import ConstantParam, ValuesParam
from services.specs.sweep import SweepSpec
from services.specs.sweep_checks import check_sweep
from services.specs.trial import TrialSpec
from services.specs.wandb_names import native_path, understood
from services.specs.wandb_params import Loc, Problems, WandbParam, wandb_param

__all__ = ["DEFAULT_BASE", "TOP_LEVEL_KEYS", "parse_wandb"]

DEFAULT_BASE: dict[str, Any] = {"task": {"name": "digits"}}
_METHODS = ("grid", "random", "bayes")
_IGNORED = ("program", "command", "entity", "project", "job", "image_uri", "controller")
_IGNORED_TOO = ("apiVersion", "kind")
_UNSUPPORTED = {
    "scheduler": "custom search engines (scheduler) are not supported; lrlab searches with "
    "method grid, random or bayes",
    "metrics": "multi-objective sweeps (metrics) are not supported; give one metric",
}
# W&B key -> native key, for keys that differ.
_KEYS = {"run_cap": "max_trials", "early_terminate": "early_stop"}
_NATIVE = {"name", "description", "max_concurrent", "seed", "metric"}
_VALID = sorted(
    {"method", "parameters", "base", *_KEYS, *_NATIVE, *_IGNORED, *_IGNORED_TOO, *_UNSUPPORTED}
)
# What a W&B sweep file may hold at the top (the schema is told from these: sweep_format).
TOP_LEVEL_KEYS = frozenset(_VALID)
_HYPERBAND = {
    "min_iter": "min_resource",
    "max_iter": "max_resource",
    "s": "brackets",
    "eta": "reduction_factor",
}
_METRIC_UNSUPPORTED = ("target", "impute", "impute_while_running")


def parse_wandb(
    config: Any, grid_limit: int | None = None, warnings: list[str] | None = None
) -> SweepSpec:
    """The native spec of the W&B sweep configuration `config` (parsed YAML or JSON).

    Raises ValidationError with every problem located in the file. With `grid_limit` (as
    at submission), the sweep is checked as a whole too: a grid's size and each of its
    combinations, and the checks of `sweep_checks` (a sampled space's trials, the metric),
    so that those errors also point into the file rather than at the native spec; their
    warnings are appended to `warnings`.
    """
    problems = Problems()
    if not isinstance(config, dict):
        got = f"{config!r:.80}"
        problems.add((), f"a W&B sweep file is a mapping with method and parameters (got {got})")
        problems.raise_if_any()
    native: dict[str, Any] = {"method": _method(config, problems)}
    for key, value in config.items():
        if key in _UNSUPPORTED:
            problems.add((key,), _UNSUPPORTED[key], value)
        elif key not in _VALID:
            valid = ", ".join(_VALID)
            problems.add((key,), f"unknown key {key!r} for a W&B sweep file; valid: {valid}")
        elif key in _KEYS or key in _NATIVE:
            native[_KEYS.get(key, key)] = value
    if "metric" in native:
        native["metric"] = _metric(native["metric"], problems)
    if "early_stop" in native:
        native["early_stop"] = _early_terminate(native["early_stop"], problems)
    space = _Space(native["method"], problems)
    space.read(config)
    base = _base(config.get("base", DEFAULT_BASE), space, problems)
    if base is not None:  # unknown names are told by the base's own entries
        for path, param_loc in space.where.items():
            message = understood(space.names[path], path, base, set(space.params))
            if message is not None:
                problems.add(param_loc, message)
    problems.raise_if_any()
    assert base is not None
    native.update(base=base, space=space.params)
    try:
        spec = SweepSpec.model_validate(native)
        if grid_limit is not None:
            check_sweep(spec, [] if warnings is None else warnings)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc, message = _in_file(error["loc"], error["msg"], space.where)
            problems.add(loc, message, error.get("input"))
        problems.raise_if_any()
        raise
    _check_size(spec, grid_limit, problems)
    return spec


def _method(config: dict[str, Any], problems: Problems) -> str:
    method = config.get("method")
    if method in _METHODS:
        return str(method)
    if method is None:
        problems.add(("method",), "method is required: grid, random or bayes")
    elif method == "custom":
        problems.add(("method",), "method custom (an external search engine) is not supported")
    else:
        problems.add(("method",), f"method must be grid, random or bayes (got {method!r})")
    return "grid"


def _metric(metric: Any, problems: Problems) -> Any:
    if not isinstance(metric, dict):
        return metric  # the native model says what a metric is
    for key in _METRIC_UNSUPPORTED:
        if key in metric:
            problems.add(("metric", key), f"metric.{key} is not supported by lrlab", metric[key])
    if "name" not in metric:
        problems.add(("metric", "name"), "metric needs the name of the metric to rank runs by")
    return {k: v for k, v in metric.items() if k not in _METRIC_UNSUPPORTED}


def _early_terminate(config: Any, problems: Problems) -> Any:
    at = ("early_terminate",)
    if not isinstance(config, dict):
        problems.add(at, f"early_terminate is a mapping with type hyperband (got {config!r:.80})")
        return None
    if config.get("type") != "hyperband":
        got = config.get("type")
        problems.add((*at, "type"), f"early_terminate needs type hyperband (got {got!r})", got)
    valid = ["type", "strict", *_HYPERBAND]
    for key in config:
        if key not in valid:
            message = f"unknown key {key!r} for early_terminate; valid: {', '.join(sorted(valid))}"
            problems.add((*at, key), message)
    if "max_iter" in config and "s" not in config:
        problems.add((*at, "s"), "max_iter needs s, the number of brackets below it")
    if "min_iter" not in config and "max_iter" not in config:
        problems.add(at, "hyperband needs min_iter, or max_iter with s")
    out = {_HYPERBAND[k]: v for k, v in config.items() if k in _HYPERBAND}
    # W&B's schema types s as a number; 2.0 brackets are 2.
    brackets = out.get("brackets")
    if isinstance(brackets, float) and brackets.is_integer():
        out["brackets"] = int(brackets)
    return {"pruner": "hyperband", **out}


class _Space:
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
        path = native_path(name, values)
        if path in self.params:
            message = f"{name} and {self.names[path]} both set {path}; keep one"
            self.problems.add(at, message)
            return
        self.params[path], self.where[path], self.names[path] = param, at, name


def _budget_value(param: WandbParam) -> Any:
    """A value the base's budget can hold while every trial sets its own."""
    if isinstance(param, ConstantParam):
        return param.value
    if isinstance(param, ValuesParam):
        whole = [v for v in param.values if isinstance(v, int) and not isinstance(v, bool)]
        return max(whole, default=param.values[0])
    return int(param.high) if param.high is not None and param.high >= 1 else 1


def _base(data: Any, space: _Space, problems: Problems) -> TrialSpec | None:
    if not isinstance(data, dict):
        problems.add(
            ("base",), f"base is a native trial spec such as {{task: digits}} (got {data!r:.80})"
        )
        return None
    # A trial has one budget, epochs or max_steps: the swept kind replaces the base's.
    kinds = [kind for kind in ("epochs", "max_steps") if f"budget.{kind}" in space.params]
    if len(kinds) == 2:
        problems.add(space.where["budget.max_steps"], "sweep epochs or max_steps, not both")
    elif kinds:
        value = _budget_value(space.params[f"budget.{kinds[0]}"])
        data = {**data, "budget": {kinds[0]: value}}
    try:
        return TrialSpec.model_validate(data)
    except ValidationError as exc:
        problems.add_native(exc, {}, ("base",))
        return None


def _in_file(loc: Loc, message: str, where: dict[str, Loc]) -> tuple[Loc, str]:
    """Where a native spec error lies in the W&B file, and its message in the file's words."""
    head, rest = (loc[0], loc[1:]) if loc else ("", ())
    if head == "space" and rest and rest[0] in where:
        return (*where[str(rest[0])], *rest[1:]), message
    if head == "space":
        return ("parameters", *rest[1:]), message
    if head == "early_stop":
        names = {native: key for key, native in _HYPERBAND.items()}
        for native, key in names.items():
            message = message.replace(native, key)
        return ("early_terminate", *(names.get(str(p), p) for p in rest)), message
    return (_FILE_KEYS.get(str(head), head), *rest), message


_FILE_KEYS = {native: key for key, native in _KEYS.items()}


def _check_size(spec: SweepSpec, limit: int | None, problems: Problems) -> None:
    if limit is None:
        return
    if spec.max_trials is not None and spec.max_trials > limit:
        problems.add(
            ("run_cap",), f"run_cap ({spec.max_trials}) is over this server's limit of {limit}"
        )
    elif spec.method == "grid":
        try:
            expand_grid(spec, limit)
        except SpecError as exc:
            problems.add(("parameters",), exc.message)
    problems.raise_if_any()
