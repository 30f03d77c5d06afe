"""GET /trials/{id}/findings and /sweeps/{id}/findings, and the cached trial analysis."""

from __future__ import annotations

import math
from typing import Any

from fastapi.testclient import TestClient

from services.analyzer import ANALYZER_VERSION, Diagnosis, Finding
from services.analyzer.findings import Severity
from services.domain.records import TrialStatus
from services.store import Store
from tests.support.rows import cache_analysis


def new_job(client: TestClient) -> tuple[int, int]:
    """(sweep id, trial id) of a new single job."""
    job = client.post("/jobs", json={"task": "digits"}).json()
    trial = client.get(f"/sweeps/{job['id']}/trials").json()["items"][0]
    return int(job["id"]), int(trial["id"])


def finding(kind: str, severity: Severity, confidence: float = 0.8) -> Finding:
    return Finding(
        kind=kind,
        severity=severity,
        confidence=confidence,
        step=5,
        summary=f"{kind} seen",
        evidence={"peak": math.inf},
        recommendation="lower the lr",
        changes={"optimizer.lr": 0.01},
    )


def store_findings(store: Store, trial: int, *findings: Finding) -> None:
    """Findings of a trial of the `client` fixture's project, 'alpha'."""
    project = store.projects.get_by_name("alpha")
    assert project is not None
    store.findings.upsert(project.id, trial, Diagnosis(findings))


def kinds(body: dict[str, Any]) -> list[str]:
    return [f["kind"] for f in body["items"]]


def test_a_trials_findings_most_severe_first_with_everything_a_finding_says(
    client: TestClient, store: Store
) -> None:
    _, trial = new_job(client)
    assert client.get(f"/trials/{trial}/findings").json()["items"] == []
    store_findings(store, trial, finding("plateau", "info"), finding("divergence", "critical", 0.6))
    r = client.get(f"/trials/{trial}/findings")
    assert r.status_code == 200
    body = r.json()
    assert kinds(body) == ["divergence", "plateau"] and body["total"] == 2
    first = body["items"][0]
    assert first["trial_id"] == trial and first["severity"] == "critical"
    assert first["summary"] == "divergence seen" and first["evidence"] == {"peak": "Infinity"}
    assert first["changes"] == {"optimizer.lr": 0.01} and first["active"] is True
    assert first["provisional"] is False and first["step"] == 5


def test_findings_filter_by_min_severity_and_kind_and_paginate(
    client: TestClient, store: Store
) -> None:
    sweep, trial = new_job(client)
    store_findings(
        store,
        trial,
        finding("divergence", "critical"),
        finding("exploding_gradients", "warning"),
        finding("plateau", "info"),
    )
    url = f"/sweeps/{sweep}/findings"
    assert kinds(client.get(url, params={"min_severity": "warning"}).json()) == [
        "divergence",
        "exploding_gradients",
    ]
    picked = client.get(url, params=[("kind", "plateau"), ("kind", "divergence")]).json()
    assert kinds(picked) == ["divergence", "plateau"]
    page = client.get(url, params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_offset"] == 2 and page["total"] == 3
    last = client.get(url, params={"limit": 2, "offset": 2}).json()
    assert kinds(last) == ["plateau"] and last["next_offset"] is None


def test_findings_no_longer_found_show_only_when_asked_for(
    client: TestClient, store: Store
) -> None:
    _, trial = new_job(client)
    store_findings(store, trial, finding("plateau", "warning"))
    store_findings(store, trial, finding("divergence", "critical"))
    assert kinds(client.get(f"/trials/{trial}/findings").json()) == ["divergence"]
    every = client.get(f"/trials/{trial}/findings", params={"include_inactive": True}).json()
    assert {(f["kind"], f["active"]) for f in every["items"]} == {
        ("divergence", True),
        ("plateau", False),
    }


def test_findings_are_scoped_to_the_project(
    client: TestClient, other_client: TestClient, store: Store
) -> None:
    sweep, trial = new_job(client)
    store_findings(store, trial, finding("plateau", "info"))
    assert other_client.get(f"/trials/{trial}/findings").status_code == 404
    assert other_client.get(f"/sweeps/{sweep}/findings").status_code == 404
    assert client.get("/trials/999999/findings").status_code == 404
    assert client.get("/sweeps/999999/findings").status_code == 404


def test_bad_filters_are_422_naming_the_field(client: TestClient) -> None:
    sweep, trial = new_job(client)
    r = client.get(f"/trials/{trial}/findings", params={"min_severity": "bad"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "min_severity"
    r = client.get(f"/sweeps/{sweep}/findings", params={"kind": "lr_too_high"})
    assert r.status_code == 422
    (detail,) = r.json()["detail"]
    assert detail["field"] == "kind" and "divergence" in detail["message"]
    r = client.get(f"/sweeps/{sweep}/findings", params={"include_inactive": "maybe"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "include_inactive"
    r = client.get(f"/sweeps/{sweep}/findings", params={"limit": 0})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "limit"
    assert client.get("/trials/0/findings").status_code == 422


def _end(store: Store, trial: int, last_step: int) -> None:
    claimed = store.trial_states.claim_next("test", lambda t: t.id == trial)
    assert claimed is not None
    store.trial_states.finish(trial, claimed.attempt, TrialStatus.SUCCEEDED, last_step=last_step)


def test_a_diagnosis_cached_by_other_rules_is_made_again(client: TestClient, store: Store) -> None:
    # After an upgrade the cache of a finished trial holds what older rules said: the
    # trial is diagnosed again by the rules that run, and its findings follow.
    sweep, trial = new_job(client)
    points = [
        {"name": "train_loss", "step": s, "value": 2.3 * math.exp(-s / 80) + 0.05}
        for s in range(400)
    ]
    assert client.post(f"/trials/{trial}/metrics", json={"points": points}).status_code == 200
    _end(store, trial, 399)
    body = client.get(f"/trials/{trial}/analysis").json()
    assert body["analyzer_version"] == ANALYZER_VERSION
    t = store.trial_states.get(trial)
    assert t is not None
    old = {**body, "kinds": ["plateau"], "findings": [], "analyzer_version": "older-rules"}
    cache_analysis(store, trial, 399, old)

    again = client.get(f"/trials/{trial}/analysis").json()
    assert again["kinds"] == body["kinds"] and again["analyzer_version"] == ANALYZER_VERSION
    cached = store.analyses.get(t.project_id, trial)
    assert cached is not None and cached.analysis is not None
    assert cached.analysis["analyzer_version"] == ANALYZER_VERSION
    # The sweep's analysis does not count an older cache as a diagnosis either.
    cache_analysis(store, trial, 399, old)
    counts = client.get(f"/sweeps/{sweep}/analysis").json()["diagnoses"]
    assert counts == {"cached": 0, "computed": 1}
    assert client.get(f"/sweeps/{sweep}/analysis").json()["diagnoses"] == {
        "cached": 1,
        "computed": 0,
    }


def test_an_ended_trials_analysis_is_kept_and_then_served_from_the_cache(
    client: TestClient, store: Store
) -> None:
    _, trial = new_job(client)
    points = [
        {"name": "train_loss", "step": s, "value": 2.3 * math.exp(-s / 80) + 0.05}
        for s in range(400)
    ]
    assert client.post(f"/trials/{trial}/metrics", json={"points": points}).status_code == 200
    t = store.trial_states.get(trial)
    assert t is not None
    assert client.get(f"/trials/{trial}/analysis").json()["provisional"] is True
    assert store.analyses.get(t.project_id, trial).analysis is None  # type: ignore[union-attr]

    _end(store, trial, 399)
    body = client.get(f"/trials/{trial}/analysis").json()
    assert body["status"] == "succeeded" and body["provisional"] is False
    cached = store.analyses.get(t.project_id, trial)
    assert cached is not None and cached.is_current
    stored = store.findings.for_trial(t.project_id, trial).items
    assert [f.kind for f in stored] == body["kinds"]
    assert not any(f.provisional for f in stored)
    # What the route answers now comes from the cache, not from the series.
    cache_analysis(store, trial, 399, {**body, "kinds": ["plateau"], "findings": []})
    again = client.get(f"/trials/{trial}/analysis").json()
    assert again["kinds"] == ["plateau"] and again["findings"] == []
