"""W&B sweep files through POST /sweeps: YAML and JSON, the trials they queue, errors
located in the file, and junk that must never reach a 5xx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from api.app import create_app
from api.sweep_body import MAX_SPEC_BYTES
from services.settings import Settings
from services.specs.documents import load_yaml
from services.store import Store
from tests.support.api import assert_invalid, created, sweep_total, trials_of
from tests.support.fuzz import FUZZ, assert_handled, json_values

YAML = {"content-type": "application/yaml"}

GRID_FILE = """\
# a W&B sweep file as people write them
program: train.py
entity: someone
project: lr-study
name: lr-by-momentum
description: lr and momentum on digits
method: grid
metric:
  name: val_loss
  goal: minimize
run_cap: 5
parameters:
  learning_rate:
    values: [0.1, 0.01, 1e-3]
  optimizer:
    parameters:
      momentum:
        values: [0.0, 0.9]
  epochs:
    value: 2
  batch_size:
    min: 32
    max: 33
early_terminate:
  type: hyperband
  min_iter: 3
base:
  task: digits
  eval_every: 10
"""


def post_yaml(client: TestClient, text: str | bytes, **params: str) -> Any:
    body = text.encode() if isinstance(text, str) else text
    return client.post("/sweeps", content=body, headers=YAML, params=params)


def params_of(client: TestClient, sweep_id: int) -> list[dict[str, Any]]:
    return [t["params"] for t in trials_of(client, sweep_id)]


def test_yaml_grid_file_queues_its_trials(client: TestClient) -> None:
    body = created(post_yaml(client, GRID_FILE))
    assert (body["name"], body["method"], body["max_trials"]) == ("lr-by-momentum", "grid", 5)
    assert body["metric"] == {"name": "val_loss", "goal": "minimize"}
    # 3 lrs x 2 momenta x 2 batch sizes = 12, capped by run_cap at the first 5
    assert body["trial_counts"] == {"queued": 5}
    expected = [
        {"optimizer.lr": lr, "optimizer.momentum": m, "budget.epochs": 2, "batch_size": bs}
        for lr in (0.1, 0.01, 0.001)
        for m in (0.0, 0.9)
        for bs in (32, 33)
    ][:5]
    assert sorted(params_of(client, body["id"]), key=repr) == sorted(expected, key=repr)
    spec = body["spec"]
    assert spec["base"]["eval_every"] == 10 and spec["base"]["budget"]["epochs"] == 2
    assert spec["early_stop"]["pruner"] == "hyperband" and spec["early_stop"]["min_resource"] == 3
    assert spec["description"] == "lr and momentum on digits"
    trial = trials_of(client, body["id"])[0]
    assert trial["spec"]["optimizer"]["lr"] == trial["params"]["optimizer.lr"]


@pytest.mark.parametrize("media", ["application/yaml", "text/yaml", "application/x-yaml"])
def test_every_yaml_media_type(client: TestClient, media: str) -> None:
    response = client.post(
        "/sweeps", content=GRID_FILE.encode(), headers={"content-type": f"{media}; charset=utf-8"}
    )
    assert created(response)["trial_counts"] == {"queued": 5}


def test_json_wandb_file_with_the_format_query(client: TestClient) -> None:
    # lrlab's reader: PyYAML's own reads 1e-3 as the string "1e-3", which is no number
    config = load_yaml(GRID_FILE)
    assert isinstance(config, dict)
    config.pop("run_cap")
    body = created(client.post("/sweeps", json=config, params={"format": "wandb"}))
    assert body["trial_counts"] == {"queued": 12}
    # the query overrides the keys: read as a native spec, which has no `parameters`
    response = client.post("/sweeps", json=config, params={"format": "native"})
    assert_invalid(response, "parameters", "unknown key")


def test_native_json_and_native_yaml(client: TestClient) -> None:
    native = {"base": {"task": "digits"}, "space": {"optimizer.lr": [0.1, 0.01]}}
    assert created(client.post("/sweeps", json=native))["trial_counts"] == {"queued": 2}
    response = post_yaml(client, yaml.safe_dump(native), format="native")
    assert created(response)["trial_counts"] == {"queued": 2}


def test_the_schema_is_told_from_the_keys_not_the_syntax(client: TestClient) -> None:
    native = {"base": {"task": "digits"}, "space": {"optimizer.lr": [0.1, 0.01]}}
    assert created(post_yaml(client, yaml.safe_dump(native)))["trial_counts"] == {"queued": 2}
    job = {"name": "one", "base": {"task": "digits"}}  # a base and no W&B key: native
    assert created(post_yaml(client, yaml.safe_dump(job)))["method"] == "single"
    config = load_yaml(LR_GRID)
    assert created(client.post("/sweeps", json=config))["trial_counts"] == {"queued": 1}
    # ?format= still overrides the keys
    response = post_yaml(client, yaml.safe_dump(native), format="wandb")
    assert_invalid(response, "space", "unknown key 'space' for a W&B sweep file")


@pytest.mark.parametrize("syntax", ["json", "yaml"])
def test_a_body_with_keys_of_both_schemas_says_how_to_choose(
    client: TestClient, syntax: str
) -> None:
    both = {
        "base": {"task": "digits"},
        "space": {"seed": [1]},
        "parameters": {"seed": {"value": 1}},
    }
    if syntax == "json":
        response = client.post("/sweeps", json=both)
    else:
        response = post_yaml(client, yaml.safe_dump(both))
    assert_invalid(response, "", "keys of a native sweep spec (space) and of a W&B sweep file")
    assert "?format=native or ?format=wandb" in response.json()["detail"][0]["message"]
    assert sweep_total(client) == 0
    # said which: the other schema's key is then an unknown key of this one
    response = client.post("/sweeps", json=both, params={"format": "native"})
    assert_invalid(response, "parameters", "unknown key 'parameters' for sweep spec")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("base: {task: digits, optimizer: {name: sgd, lr: '0.1'}}\n", "base.optimizer.lr"),
        ("base: {task: digits, optimizer: {name: sgd, lr: true}}\n", "base.optimizer.lr"),
        ("base: {task: digits, budget: {epochs: 1.0e3}}\n", "base.budget.epochs"),
        ("base: {task: digits}\nmax_concurrent: '4'\n", "max_concurrent"),
    ],
)
def test_yaml_numbers_are_strict_too(client: TestClient, text: str, field: str) -> None:
    assert_invalid(post_yaml(client, text), field, "Input should be a valid")


def test_nested_and_whole_entry_parameters(client: TestClient) -> None:
    text = """
method: grid
parameters:
  optimizer:
    values:
      - {name: adam, lr: 0.001}
      - {name: sgd, lr: 0.1, momentum: 0.9}
  scheduler:
    parameters:
      name: {value: cosine}
      warmup_steps: {values: [0, 5]}
  regularization.dropout: {value: 0.1}
"""
    body = created(post_yaml(client, text))
    assert body["trial_counts"] == {"queued": 4}
    trials = trials_of(client, body["id"])
    assert {t["spec"]["optimizer"]["name"] for t in trials} == {"adam", "sgd"}
    assert {t["spec"]["schedule"]["warmup_steps"] for t in trials} == {0, 5}
    assert all(t["spec"]["schedule"]["name"] == "cosine" for t in trials)
    assert all(t["spec"]["regularization"]["dropout"] == 0.1 for t in trials)


def test_max_steps_sweep_replaces_the_epochs_budget(client: TestClient) -> None:
    text = "method: grid\nparameters:\n  max_steps: {values: [20, 40]}\n  lr: {value: 0.05}\n"
    body = created(post_yaml(client, text))
    budgets = [t["spec"]["budget"] for t in trials_of(client, body["id"])]
    assert sorted(b["max_steps"] for b in budgets) == [20, 40]
    assert all(b["epochs"] is None for b in budgets)


@pytest.mark.parametrize("method", ["random", "bayes"])
def test_sampled_methods_are_accepted_and_asked_lazily(client: TestClient, method: str) -> None:
    text = f"""
method: {method}
run_cap: 7
metric: {{name: val_loss, goal: minimize}}
parameters:
  learning_rate: {{distribution: log_uniform_values, min: 1e-5, max: 1e-1}}
"""
    body = created(post_yaml(client, text))
    assert (body["method"], body["max_trials"]) == (method, 7)
    assert body["spec"]["space"]["optimizer.lr"]["distribution"] == "log_uniform"
    assert trials_of(client, body["id"]) == []  # the scheduler asks for each as room frees


LR_GRID = "method: grid\nparameters:\n  lr: {values: [0.1]}\n"
RANDOM = "method: random\nparameters:\n"


def bad(case: str, text: str, field: str, message: str) -> Any:
    return pytest.param(text, field, message, id=case)


INVALID_FILES = [
    bad(
        "log-values-min-zero",
        RANDOM + "  learning_rate: {distribution: log_uniform_values, min: 0, max: 0.1}\n",
        "parameters.learning_rate.min",
        "log_uniform_values needs min > 0",
    ),
    bad(
        "exponents-reversed",
        RANDOM + "  lr: {distribution: log_uniform, min: -2, max: -9}\n",
        "parameters.lr.min",
        "min (-2) must be less than max (-9)",
    ),
    bad(
        "unknown-name",
        "method: grid\nparameters:\n  learning_rte: {values: [0.1]}\n",
        "parameters.learning_rte",
        "(did you mean learning_rate?): lrlab understands lr, optimizer, momentum,",
    ),
    bad(
        "invalid-combination",
        "method: grid\nparameters:\n  optimizer:\n    parameters:\n      lr: {values: [0]}\n",
        "parameters",
        "gives an invalid trial",
    ),
    bad(
        "grid-normal",
        "method: grid\nparameters:\n  lr: {distribution: normal, mu: 0.1, sigma: 0.01}\n",
        "parameters.lr.distribution",
        "can only be sampled",
    ),
    bad(
        "max-iter-without-s",
        LR_GRID + "early_terminate: {type: hyperband, max_iter: 27}\n",
        "early_terminate.s",
        "max_iter needs s",
    ),
    bad(
        "no-bracket",
        LR_GRID + "early_terminate: {type: hyperband, max_iter: 2, s: 1}\n",
        "early_terminate.max_iter",
        "max_iter (2) / eta (3) is below 1",
    ),
    bad("run-cap-zero", LR_GRID + "run_cap: 0\n", "run_cap", "greater than or equal to 1"),
    bad("base-task", LR_GRID + "base: {task: mnist}\n", "base.task.name", "unknown task 'mnist'"),
    bad("no-parameters", "method: grid\n", "parameters", "parameters is required"),
    # the checks of a sweep at submission, located in the file
    bad(
        "momentum-normal-leaves-its-bounds",
        RANDOM + "  momentum: {distribution: normal, mu: 0.9, sigma: 0.05}\n",
        "parameters.momentum",
        "normal(mu=0.9, sigma=0.05) out to 4 sigma reaches 1.1: optimizer.momentum: Input "
        "should be less than 1",
    ),
    bad(
        "random-schedule-field-one-kind-refuses",
        RANDOM
        + "  scheduler: {values: [cosine, step]}\n  gamma: {value: 1.5}\n"
        + "  lr: {min: 0.001, max: 0.1}\n",
        "parameters.gamma",
        "schedule.gamma: Input should be less than or equal to 1",
    ),
    bad(
        "bayes-without-metric",
        "method: bayes\nparameters:\n  lr: {min: 0.001, max: 0.1}\n",
        "metric",
        "name the metric: method bayes models the metric",
    ),
    bad(
        "hyperband-metric-not-logged",
        LR_GRID + "metric: {name: val_f1, goal: maximize}\n"
        "early_terminate: {type: hyperband, min_iter: 1}\n",
        "metric.name",
        "early_stop judges trials at their evaluations, where task 'digits' logs val_loss, "
        "val_accuracy; 'val_f1' is not among them",
    ),
    bad(
        "run-cap-true",
        LR_GRID + "run_cap: true\n",
        "run_cap",
        "valid integer",
    ),
    bad("no-method", "parameters:\n  lr: {values: [0.1]}\n", "method", "method is required"),
    bad("yaml-syntax", LR_GRID[:-2] + "\n", "", "invalid YAML at line 4, column 1"),
    bad("yaml-date", RANDOM + "  lr: {values: [2020-01-01]}\n", "parameters.lr.values[0]", "date"),
    bad("a-list", "- 1\n- 2\n", "", "a W&B sweep file is a mapping"),
]


@pytest.mark.parametrize(("text", "field", "message"), INVALID_FILES)
def test_invalid_file_is_422_at_its_place_in_the_file(
    client: TestClient, text: str, field: str, message: str
) -> None:
    assert_invalid(post_yaml(client, text), field, message)
    assert sweep_total(client) == 0


def test_a_wandb_files_warnings_come_with_the_sweep(client: TestClient) -> None:
    text = LR_GRID + "metric: {name: val_accuracy, goal: minimize}\n"
    body = created(post_yaml(client, text))
    assert body["warnings"] == [
        "metric.goal: minimizing val_accuracy, where higher is better; did you mean maximize?",
        "base: nothing names a task, so every trial trains lrlab's built-in task digits; name "
        "one with base: {task: ...} or a task parameter",
    ]


def test_grid_limit_points_into_the_file(store: Store, client: TestClient, tmp_path: Path) -> None:
    small = create_app(Settings(data_dir=tmp_path, max_trials_per_sweep=4), store)
    with TestClient(small, raise_server_exceptions=False) as limited:
        limited.headers["Authorization"] = client.headers["Authorization"]
        text = "method: grid\nparameters:\n  seed: {min: 1, max: 5}\n"
        assert_invalid(post_yaml(limited, text), "parameters", "grid has 5 combinations")
        capped = "method: grid\nrun_cap: 9\nparameters:\n  seed: {values: [1]}\n"
        assert_invalid(post_yaml(limited, capped), "run_cap", "over this server's limit of 4")


def test_transport_errors(client: TestClient) -> None:
    response = client.post(
        "/sweeps", content=b"method: grid", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415 and "application/yaml" in response.text
    big = b"# " + b"x" * MAX_SPEC_BYTES
    assert post_yaml(client, big).status_code == 413
    assert post_yaml(client, b"method: grid\nname: \xff\n").status_code == 422
    response = client.post("/sweeps", content=b"", headers=YAML)
    assert_invalid(response, "", "a W&B sweep file is a mapping")
    assert sweep_total(client) == 0


def test_yaml_without_a_token_is_401(client: TestClient) -> None:
    response = client.post("/sweeps", content=b"- [", headers={**YAML, "Authorization": ""})
    assert response.status_code == 401


def test_alias_bomb_is_refused(client: TestClient) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    response = post_yaml(client, "\n".join(lines) + "\n")
    assert_invalid(response, "", "expands to more than")


# -- junk never reaches a 5xx ---------------------------------------------------------------

wandb_like = st.fixed_dictionaries(
    {},
    optional={
        "method": st.sampled_from(["grid", "random", "bayes", "custom"]) | json_values,
        "parameters": st.dictionaries(
            st.sampled_from(["lr", "learning_rate", "optimizer", "epochs", "max_steps", "x.y"])
            | st.text(max_size=8),
            json_values
            | st.fixed_dictionaries(
                {},
                optional={
                    key: json_values
                    for key in ("distribution", "min", "max", "q", "mu", "sigma", "a", "b")
                },
            )
            | st.fixed_dictionaries({"parameters": json_values}),
            max_size=4,
        ),
        "early_terminate": st.fixed_dictionaries(
            {"type": st.just("hyperband") | json_values},
            optional={k: json_values for k in ("min_iter", "max_iter", "s", "eta")},
        ),
        "run_cap": json_values,
        "metric": json_values,
        "base": json_values,
    },
)


@FUZZ
@given(config=wandb_like)
def test_wandb_shaped_junk_is_handled(client: TestClient, config: dict[str, Any]) -> None:
    assert_handled(client.post("/sweeps", content=json.dumps(config), params={"format": "wandb"}))
    text = yaml.safe_dump(json.loads(json.dumps(config, allow_nan=True)), allow_unicode=True)
    assert_handled(post_yaml(client, text))


@FUZZ
@given(text=st.text(max_size=200) | st.binary(max_size=200))
def test_random_text_as_yaml_is_handled(client: TestClient, text: str | bytes) -> None:
    assert_handled(post_yaml(client, text))


@FUZZ
@given(cut=st.integers(0, len(GRID_FILE)), junk=st.text(max_size=5))
def test_damaged_grid_file_is_handled(client: TestClient, cut: int, junk: str) -> None:
    assert_handled(post_yaml(client, GRID_FILE[:cut] + junk + GRID_FILE[cut:]))
