"""The GitHub Actions workflow: linted by actionlint, and it runs `make test`
against external PostgreSQL and Redpanda."""

from __future__ import annotations

from typing import Any

import yaml

from tests.conftest import PROJECT_ROOT
from tests.deploy.conftest import Run

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "ci.yml"


def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def test_actionlint_passes(actionlint: Run) -> None:
    result = actionlint("-no-color", str(WORKFLOW.relative_to(PROJECT_ROOT)))
    assert result.stdout == ""


def test_ci_runs_make_test_against_external_services() -> None:
    job = workflow()["jobs"]["test"]
    env = job["env"]
    assert env["USE_EXTERNAL_SERVICES"] == "1"
    assert env["DATABASE_URL"].startswith("postgres://")
    assert env["KAFKA_BROKERS"] == "127.0.0.1:9092"
    assert job["services"]["postgres"]["image"].startswith("postgres:15")

    runs = [step.get("run", "") for step in job["steps"]]
    broker = next(run for run in runs if "redpanda start" in run)
    assert "--advertise-kafka-addr=PLAINTEXT://127.0.0.1:9092" in broker
    assert "rpk cluster health" in broker
    assert any(run.strip() == "make test" for run in runs)
    # The broker is up before the tests start.
    assert runs.index(broker) < next(
        i for i, run in enumerate(runs) if run.strip() == "make test"
    )
    python = next(
        step for step in job["steps"] if "setup-python" in step.get("uses", "")
    )
    assert python["with"]["python-version"] == "3.11"
