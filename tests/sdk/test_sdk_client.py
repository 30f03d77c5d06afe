"""Every Client method against a real `lrlab serve` on PostgreSQL."""

from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import lrlab
import pytest
import yaml

from tests.support.api import job, lr_grid_sweep
from tests.support.files import write
from tests.support.lrlab_server import LrlabServer


def test_health_and_project(client: lrlab.Client) -> None:
    health = client.health()
    assert health.status == "ok" and health.database == "postgresql"
    project = client.project()
    assert isinstance(project, lrlab.Project) and project.name == "default"


def test_url_and_token_come_from_the_environment(
    lrlab_server: LrlabServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LRLAB_URL", lrlab_server.url)
    monkeypatch.setenv("LRLAB_TOKEN", lrlab_server.token)
    with lrlab.Client() as c:
        assert c.url == lrlab_server.url
        assert c.project().name == "default"


def test_tokens_and_projects(client: lrlab.Client, lrlab_server: LrlabServer) -> None:
    issued = client.create_token("ci")
    assert issued.secret.startswith("lrl_") and issued.token.name == "ci"
    assert "ci" in {t.name for t in client.tokens()}
    with lrlab.Client(lrlab_server.url, issued.secret) as member:
        assert member.project().name == "default"
        with pytest.raises(lrlab.Forbidden):
            member.create_project("not-allowed")
    client.revoke_token(issued.token.id)
    revoked = lrlab.Client(lrlab_server.url, issued.secret)
    with revoked, pytest.raises(lrlab.Unauthorized):
        revoked.project()
    created = client.create_project("sdk-other")
    assert created.project.name == "sdk-other" and created.token.secret.startswith("lrl_")
    assert "sdk-other" in {p.name for p in client.projects()}


def test_a_viewer_token_reads_and_is_refused_writes(
    client: lrlab.Client, lrlab_server: LrlabServer
) -> None:
    issued = client.create_token("dashboard", role="viewer")
    assert issued.token.role == "viewer" and not issued.token.is_admin
    with lrlab.Client(lrlab_server.url, issued.secret) as viewer:
        assert viewer.project().name == "default"
        with pytest.raises(lrlab.Forbidden, match="viewer token"):
            viewer.create_token("escalate")
    assert "escalate" not in {t.name for t in client.tokens()}


def test_registries(client: lrlab.Client) -> None:
    tasks = {t.name: t for t in client.tasks()}
    assert "digits" in tasks and tasks["digits"].description
    optimizers = {o.name: o for o in client.optimizers()}
    assert "lr" in optimizers["sgd"].param_names
    assert "cosine" in {s.name for s in client.schedules()}


def test_create_sweep_get_list_and_trials(client: lrlab.Client) -> None:
    sweep = client.create_sweep(lr_grid_sweep(lrs=(0.001, 0.01, 0.1)))
    assert isinstance(sweep, lrlab.Sweep)
    assert sweep.status == "running" and sweep.method == "grid"
    assert sweep.trial_counts == {"queued": 3} and sweep.trials_total == 3
    assert client.get_sweep(sweep.id) == sweep.model_copy(
        update={"updated_at": client.get_sweep(sweep.id).updated_at}
    )
    trials = client.trials(sweep.id)
    assert [t.number for t in trials] == [0, 1, 2]
    assert sorted(t.params["optimizer.lr"] for t in trials) == [0.001, 0.01, 0.1]
    assert client.trials(sweep.id, status="running") == []
    page = client.list_trials(sweep.id, limit=2)
    assert page.total == 3 and len(page.items) == 2 and page.next_offset == 2
    trial = client.get_trial(trials[0].id)
    assert trial.status == "queued" and trial.sweep_id == sweep.id
    assert [e.status for e in client.trial_events(trial.id)] == ["queued"]


def test_sweep_listing_pages_through_everything(client: lrlab.Client) -> None:
    ids = {client.create_job(job()).id for _ in range(3)}
    first = client.list_sweeps(limit=2)
    assert len(first.items) == 2 and first.next_offset == 2
    every = {s.id for s in client.iter_sweeps()}
    assert ids <= every and len(every) == first.total


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".spec"])
def test_submit_a_native_spec_file(client: lrlab.Client, tmp_path: Path, suffix: str) -> None:
    spec = lr_grid_sweep(name=f"from{suffix}")
    text = json.dumps(spec) if suffix == ".json" else yaml.safe_dump(spec)
    sweep = client.submit(write(tmp_path / f"sweep{suffix}", text))
    assert sweep.name == f"from{suffix}" and sweep.trials_total == 2


WANDB = """
method: grid
metric: {name: val_loss, goal: minimize}
parameters:
  learning_rate: {values: [0.001, 0.01, 0.1]}
  batch_size: {value: 32}
"""


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_submit_a_wandb_sweep_file(client: lrlab.Client, tmp_path: Path, suffix: str) -> None:
    doc = yaml.safe_load(WANDB)
    text = WANDB if suffix == ".yaml" else json.dumps(doc)
    sweep = client.submit(write(tmp_path / f"wandb{suffix}", text))
    assert sweep.method == "grid" and sweep.trials_total == 3
    lrs = sorted(t.spec["optimizer"]["lr"] for t in client.trials(sweep.id))
    assert lrs == [0.001, 0.01, 0.1]
    assert client.create_sweep(doc).trials_total == 3  # a dict: told apart by its keys
    # No task named: the answer says every trial trains the default one.
    assert [w.split(":")[0] for w in sweep.warnings] == ["base"]
    assert client.get_sweep(sweep.id).warnings == []  # the submission's, not the sweep's


def test_a_wandb_error_points_into_the_file(client: lrlab.Client, tmp_path: Path) -> None:
    bad = WANDB.replace("{values: [0.001, 0.01, 0.1]}", "{min: 0.1, max: 0.01}")
    with pytest.raises(lrlab.ValidationError) as caught:
        client.submit(write(tmp_path / "wandb.yaml", bad))
    assert any(f.startswith("parameters.learning_rate") for f in caught.value.fields)


def test_the_format_can_be_forced(client: lrlab.Client, tmp_path: Path) -> None:
    path = write(tmp_path / "native.yaml", yaml.safe_dump(lr_grid_sweep()))
    with pytest.raises(lrlab.ValidationError):
        client.submit(path, format="wandb")  # a native document read as W&B: refused
    assert client.submit(path, format="native").trials_total == 2


GOAL_WARNING = (
    "metric.goal: minimizing val_accuracy, where higher is better; did you mean maximize?"
)


def test_a_submissions_warnings_are_on_the_sweep(client: lrlab.Client, tmp_path: Path) -> None:
    spec = lr_grid_sweep(metric={"name": "val_accuracy", "goal": "minimize"})
    sweep = client.create_sweep(spec)
    assert sweep.warnings == [GOAL_WARNING] and sweep.trials_total == 2  # stored all the same
    assert client.get_sweep(sweep.id).warnings == []  # only the submission's answer has them
    assert client.submit(write(tmp_path / "warn.yaml", yaml.safe_dump(spec))).warnings == [
        GOAL_WARNING
    ]
    assert client.create_sweep(lr_grid_sweep()).warnings == []


def test_submit_an_unreadable_file(client: lrlab.Client, tmp_path: Path) -> None:
    with pytest.raises(lrlab.SpecFileError, match="not valid JSON"):
        client.submit(write(tmp_path / "bad.json", "{nope"))
    with pytest.raises(lrlab.SpecFileError, match="not valid YAML"):
        client.submit(write(tmp_path / "bad.yaml", "a: [1, 2"))
    with pytest.raises(lrlab.SpecFileError, match="must hold a mapping"):
        client.submit(write(tmp_path / "list.yaml", "- 1\n- 2\n"))
    with pytest.raises(lrlab.SpecFileError, match="cannot read"):
        client.submit(tmp_path / "missing.yaml")


def test_cancel_and_wait(client: lrlab.Client) -> None:
    sweep = client.sweep(client.create_sweep(lr_grid_sweep()).id)
    with pytest.raises(lrlab.WaitTimeout) as waited:
        sweep.wait(timeout=0.3, poll=0.1)
    assert waited.value.sweep.status == "running"
    first = sweep.trials()[0]
    assert client.cancel_trial(first.id).status == "cancelled"
    cancelled = sweep.cancel()
    assert cancelled.status == "cancelled"
    assert sweep.cancel().status == "cancelled"  # idempotent
    done = sweep.wait(timeout=10)
    assert done.is_terminal and done.trial_counts == {"cancelled": 2}


def test_metrics_in_and_out(client: lrlab.Client) -> None:
    trial = client.trial(client.trials(client.create_job(job()).id)[0].id)
    points = [{"name": "train_loss", "step": s, "value": 1.0 / (s + 1)} for s in range(250)]
    points += [{"name": "val_loss", "step": 10, "value": math.nan}]
    points += [{"name": "val_loss", "step": 20, "value": math.inf, "time": 1_700_000_000.0}]
    assert client.log_metrics(trial.id, points) == 252
    assert client.log_metrics(trial.id, points) == 252  # again: nothing changes
    assert trial.metric_names() == ["train_loss", "val_loss"]

    full = {s.name: s for s in trial.metrics(page_size=100)}
    loss = full["train_loss"]
    assert loss.steps == list(range(250)) and loss.next_start is None
    assert loss.values[3] == pytest.approx(0.25)
    val = full["val_loss"]
    assert math.isnan(val.values[0]) and val.values[1] == math.inf
    assert val.times[1] == 1_700_000_000.0

    small = trial.metrics(["train_loss"], max_points=10)
    assert len(small) == 1 and small[0].downsampled and len(small[0].steps) <= 10
    window = trial.metrics(["train_loss"], start=100, end=109)
    assert window[0].steps == list(range(100, 110))


def test_dataframes(client: lrlab.Client) -> None:
    sweep = client.sweep(client.create_sweep(lr_grid_sweep()).id)
    trials = sweep.trials()
    for i, t in enumerate(trials):
        client.log_metrics(
            t.id,
            [{"name": n, "step": s, "value": i + s / 10} for n in ("a", "b") for s in range(5)],
        )
    wide = sweep.trial(trials[1].id).dataframe()
    assert list(wide.columns) == ["a", "b"] and list(wide.index) == list(range(5))
    assert wide.index.name == "step" and wide.loc[3, "b"] == pytest.approx(1.3)
    long = client.metrics_frame(trials[0].id, ["a"], wide=False)
    assert list(long.columns) == ["trial_id", "name", "step", "value", "time"]
    assert len(long) == 5 and set(long["trial_id"]) == {trials[0].id}
    both = sweep.dataframe(["b"])
    assert len(both) == 10 and set(both["trial_id"]) == {t.id for t in trials}


def test_trial_analysis(client: lrlab.Client) -> None:
    trial_id = client.trials(client.create_job(job()).id)[0].id
    client.log_metrics(
        trial_id,
        [{"name": "train_loss", "step": s, "value": 2.0 * 0.98**s} for s in range(300)],
    )
    analysis = client.trial(trial_id).analysis()
    assert isinstance(analysis, lrlab.Analysis) and analysis.trial_id == trial_id
    assert analysis.status == "queued" and analysis.kinds
    assert all(isinstance(f, lrlab.Finding) for f in analysis.findings)


def test_sweep_analysis(client: lrlab.Client) -> None:
    sweep = client.create_sweep(lr_grid_sweep())
    analysis = client.sweep(sweep.id).analysis()
    assert isinstance(analysis, lrlab.SweepAnalysis) and analysis.sweep_id == sweep.id
    assert analysis.provisional and analysis.trials["total"] == 2
    assert analysis.metric is not None and analysis.metric.name == "val_loss"


def test_findings(client: lrlab.Client) -> None:
    """A finished run is diagnosed and its findings stored, for the trial and its sweep."""
    run = client.start_run("diverges")
    for s in range(200):
        run.log({"train_loss": 1.0 * 1.05**s if s < 150 else math.inf, "lr": 1.0}, step=s)
    assert "divergence" in run.finish().kinds
    found = client.trial(run.id).findings()
    assert found and all(isinstance(f, lrlab.Finding) for f in found)
    divergence = next(f for f in found if f.kind == "divergence")
    assert divergence.trial_id == run.id and divergence.active and divergence.recommendation
    assert client.trial_findings(run.id, kinds=["overfitting"]) == []
    assert client.trial_findings(run.id, min_severity="critical")
    assert {f.id for f in client.sweep(run.info.sweep_id).findings()} == {f.id for f in found}


def test_lr_find_and_recommendations(client: lrlab.Client) -> None:
    found = client.lr_find(job(optimizer={"name": "sgd", "lr": 1e-4}), max_lr=1.0, steps=50)
    assert isinstance(found, lrlab.LrFind) and found.status == "queued" and found.provisional
    assert found.options["max_lr"] == 1.0 and found.options["steps"] == 50
    again = client.get_lr_find(found.sweep_id, max_points=10)
    assert again.trial_id == found.trial_id
    with pytest.raises(TimeoutError):  # no scheduler here: it stays queued
        client.wait_lr_find(found.sweep_id, timeout=0.2, poll=0.05)
    advice = client.recommend("digits", "sgd", batch_size=64)
    assert isinstance(advice, lrlab.Recommendation) and not advice.enough_history
    assert advice.lr is None and advice.reasoning and advice.query["batch_size"] == 64
    adam = client.recommend("digits", "adam", betas=(0.85, 0.99), max_steps=300)
    assert adam.query["optimizer_params"] == {"betas": [0.85, 0.99]}
    assert adam.query["max_steps"] == 300 and adam.widened == [] and adam.matched_on == []


def test_an_older_server_says_what_it_lacks() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(404, json={"detail": "Not Found"}))
    old = lrlab.Client("http://lrlab.test", "t", transport=transport)
    with pytest.raises(lrlab.NotAvailable, match="not available on this server"):
        old.recommend("digits", "sgd")
    with pytest.raises(lrlab.NotAvailable, match="range test"):
        old.lr_find(job())
