"""W&B sweep files: a Weights & Biases sweep configuration read as a native SweepSpec.

Top-level keys:
- `method` (grid, random or bayes), `metric` {name, goal, target}, `parameters`, `run_cap`
  (-> max_trials), `name`, `description`, `early_terminate` (-> early_stop, below).
- `metric.target`: the sweep ends once a trial ends with its metric at the target.
  `metric.impute` and `impute_while_running` are accepted with a warning: lrlab leaves
  failed trials out of Bayesian search rather than imputing a value for them.
- `program`, `command`, `job`, `image_uri` name code to run, and lrlab's server never runs
  uploaded code: it trains registered tasks. A file with them is accepted when `base` or a
  `task` parameter names the task to train (with a warning that the code is not run),
  and refused otherwise, so that no such file trains a built-in task in silence.
- `entity`, `project` and `controller` are accepted with a warning: the sweep belongs to
  the lrlab project of the request's token and lrlab's scheduler runs it. `apiVersion`
  and `kind` describe the file and are accepted as they are.
- lrlab's own: `base`, the native trial spec every trial starts from (default `{task:
  digits}`, with a warning when nothing names a task), plus `max_concurrent` and `seed`
  (the sampler's seed) as in a native spec. Any other key is an error, as are the W&B
  features lrlab lacks (`metrics`, `scheduler`, method custom).

Parameters: see `wandb_space` (the section flattened), `wandb_params` (forms,
distributions, inference, weighted categoricals) and `wandb_names` (which trial-spec field
a name sets). Sweeping `epochs` or `max_steps` sets the base's budget to that kind, since
a trial has exactly one.

early_terminate {type: hyperband, min_iter | max_iter and s, eta (3), strict (true)}
becomes early_stop {pruner: hyperband, min_resource, max_resource, brackets,
reduction_factor, strict}. An iteration is one evaluation of the sweep's metric; W&B's
strict, on unless the file says false, judges a trial by its value at the band rather
than its best so far.

Warnings (what a file asks for that lrlab accepts but does not do, each a sentence naming
the key) are appended to the list the caller passes. Every error is located in the file:
`parameters.learning_rate.min`, `run_cap`, ...
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from services.domain.metric_aliases import canonical_name
from services.specs.common import SpecError
from services.specs.grid import expand_grid
from services.specs.params import ConstantParam, ValuesParam
from services.specs.sweep import SweepSpec
from services.specs.sweep_checks import check_sweep
from services.specs.tasks import TASKS
from services.specs.trial import TrialSpec
from services.specs.wandb_names import understood
from services.specs.wandb_params import Loc, Problems, WandbParam
from services.specs.wandb_space import Space

__all__ = ["DEFAULT_BASE", "TOP_LEVEL_KEYS", "parse_wandb"]

DEFAULT_BASE: dict[str, Any] = {"task": {"name": "digits"}}
_METHODS = ("grid", "random", "bayes")
# Keys naming code to run: a script, its command line, a Launch job or image.
_CODE = ("program", "command", "job", "image_uri")
# Keys accepted with a warning: lrlab has nothing that does what they ask.
_NOT_HONOURED = {
    "entity": "W&B entities have no meaning in lrlab; the sweep belongs to the lrlab "
    "project of the request's token",
    "project": "the sweep belongs to the lrlab project of the request's token, not to a "
    "project named in the file",
    "controller": "lrlab's own scheduler runs every sweep; no W&B controller is used",
}
_METADATA = ("apiVersion", "kind")  # they describe the file, which lrlab reads as it is
_UNSUPPORTED = {
    "scheduler": "custom search engines (scheduler) are not supported; lrlab searches with "
    "method grid, random or bayes",
    "metrics": "multi-objective sweeps (metrics) are not supported; give one metric",
}
# W&B key -> native key, for keys that differ.
_KEYS = {"run_cap": "max_trials", "early_terminate": "early_stop"}
_NATIVE = {"name", "description", "max_concurrent", "seed", "metric"}
_VALID = sorted(
    {
        "method",
        "parameters",
        "base",
        *_KEYS,
        *_NATIVE,
        *_CODE,
        *_NOT_HONOURED,
        *_METADATA,
        *_UNSUPPORTED,
    }
)
# What a W&B sweep file may hold at the top (the schema is told from these: sweep_format).
TOP_LEVEL_KEYS = frozenset(_VALID)
_HYPERBAND = {
    "min_iter": "min_resource",
    "max_iter": "max_resource",
    "s": "brackets",
    "eta": "reduction_factor",
    "strict": "strict",
}
_IMPUTE = {
    "impute": "lrlab leaves failed, crashed and cancelled trials out of Bayesian search "
    "rather than imputing a value for them",
    "impute_while_running": "lrlab's Bayesian search counts a running trial as running (its "
    "sampler keeps away from it) rather than imputing a value for it",
}


def parse_wandb(
    config: Any, grid_limit: int | None = None, warnings: list[str] | None = None
) -> SweepSpec:
    """The native spec of the W&B sweep configuration `config` (parsed YAML or JSON).

    Raises ValidationError with every problem located in the file. With `grid_limit` (as
    at submission), the sweep is checked as a whole too: a grid's size and each of its
    combinations, and the checks of `sweep_checks` (a sampled space's trials, the metric),
    so that those errors also point into the file rather than at the native spec; the file's
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
        elif key in _NOT_HONOURED:
            problems.warn((key,), _NOT_HONOURED[key])
    if "metric" in native:
        native["metric"] = _metric(native["metric"], problems)
    if "early_stop" in native:
        native["early_stop"] = _early_terminate(native["early_stop"], problems)
    space = Space(native["method"], problems)
    space.read(config)
    _check_task(config, space, problems)
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
    if warnings is not None:
        warnings.extend(problems.warnings)
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
    for key in _IMPUTE:
        if key in metric:
            problems.warn(("metric", key), f"{metric[key]!r:.40} is not used: {_IMPUTE[key]}")
    if "name" not in metric:
        problems.add(("metric", "name"), "metric needs the name of the metric to rank runs by")
    out = {k: v for k, v in metric.items() if k not in _IMPUTE}
    name = out.get("name")
    canonical = canonical_name(name) if isinstance(name, str) else None
    if canonical is not None:
        # The file names the series as its framework logs it (eval_loss, val/loss);
        # lrlab's tasks log it under lrlab's name.
        problems.warn(("metric", "name"), f"{name!r} is read as lrlab's {canonical!r}")
        out["name"] = canonical
    return out


def _task_source(config: dict[str, Any], space: Space) -> str | None:
    """What names the task the trials train, in words; None when nothing does."""
    for path in ("task", "task.name"):
        if path in space.params:
            return f"named by the parameter {space.names[path]}"
    base = config.get("base")
    if isinstance(base, dict) and "task" in base:
        task = base["task"]
        name = task.get("name") if isinstance(task, dict) else task
        return f"{name!r} of base"
    return None


def _check_task(config: dict[str, Any], space: Space, problems: Problems) -> None:
    """No file trains a built-in task in silence: code to run needs a registered task
    named in its place; a file that names none trains the default with a warning."""
    source = _task_source(config, space)
    code = [key for key in _CODE if key in config]
    if source is not None:
        for key in code:
            ran = f"{config[key]!r:.80}"
            problems.warn((key,), f"lrlab does not run {ran}: each trial trains the task {source}")
    elif code:
        tasks = ", ".join(TASKS)
        problems.add(
            (code[0],),
            f"lrlab's server never runs uploaded code ({code[0]} {config[code[0]]!r:.80}); it "
            f"trains registered tasks: name one with base: {{task: digits}} or a task "
            f"parameter (registered: {tasks}). An agent that runs your own training code "
            "is planned.",
        )
    else:
        default = DEFAULT_BASE["task"]["name"]
        problems.warn(
            ("base",),
            f"nothing names a task, so every trial trains lrlab's built-in task {default}; "
            f"name one with base: {{task: ...}} or a task parameter",
        )


def _early_terminate(config: Any, problems: Problems) -> Any:
    at = ("early_terminate",)
    if not isinstance(config, dict):
        problems.add(at, f"early_terminate is a mapping with type hyperband (got {config!r:.80})")
        return None
    if config.get("type") != "hyperband":
        got = config.get("type")
        problems.add((*at, "type"), f"early_terminate needs type hyperband (got {got!r})", got)
    valid = ["type", *_HYPERBAND]
    for key in config:
        if key not in valid:
            message = f"unknown key {key!r} for early_terminate; valid: {', '.join(sorted(valid))}"
            problems.add((*at, key), message)
    if "max_iter" in config and "s" not in config:
        problems.add((*at, "s"), "max_iter needs s, the number of brackets below it")
    if "min_iter" not in config and "max_iter" not in config:
        problems.add(at, "hyperband needs min_iter, or max_iter with s")
    strict = config.get("strict", True)
    if not isinstance(strict, bool):
        problems.add((*at, "strict"), f"strict is true or false (got {strict!r:.40})", strict)
    out = {_HYPERBAND[k]: v for k, v in config.items() if k in _HYPERBAND}
    out.setdefault("strict", True)  # W&B's default: judge a trial at the band itself
    # W&B's schema types s as a number; 2.0 brackets are 2.
    brackets = out.get("brackets")
    if isinstance(brackets, float) and brackets.is_integer():
        out["brackets"] = int(brackets)
    return {"pruner": "hyperband", **out}


def _budget_value(param: WandbParam) -> Any:
    """A value the base's budget can hold while every trial sets its own."""
    if isinstance(param, ConstantParam):
        return param.value
    if isinstance(param, ValuesParam):
        whole = [v for v in param.values if isinstance(v, int) and not isinstance(v, bool)]
        return max(whole, default=param.values[0])
    return int(param.high) if param.high is not None and param.high >= 1 else 1


def _base(data: Any, space: Space, problems: Problems) -> TrialSpec | None:
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
