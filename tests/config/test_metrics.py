"""Prometheus metrics: the web app's `/metrics`, gunicorn's multi-process mode,
and a worker's metrics port after it ran real jobs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path
from prometheus_client.parser import text_string_to_metric_families

from config.urls import urlpatterns as project_urlpatterns
from queueing.producer import get_publisher
from tests.conftest import PROJECT_ROOT, KafkaNames, wait_for
from tests.deploy.conftest import find_tool
from tests.queueing import tasks
from tests.queueing.conftest import queue_tables  # noqa: F401  (fixture)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def boom(request: HttpRequest, number: int) -> HttpResponse:
    raise RuntimeError("a view that fails")


# The project's URLs plus one that fails (see `failing_urls`).
urlpatterns = [path("boom/<int:number>", boom, name="boom"), *project_urlpatterns]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(client: Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


# --- The web app's /metrics ---------------------------------------------------------


@pytest.fixture
def failing_urls(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ROOT_URLCONF = __name__


@pytest.mark.django_db
@pytest.mark.usefixtures("failing_urls")
def test_requests_are_counted_by_route_and_status_code() -> None:
    client = Client(raise_request_exception=False)
    admin = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw")
    staff = Client(raise_request_exception=False)
    staff.force_login(admin)
    before = scrape(client)

    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.get("/no-such-page/12345").status_code == 404
    assert client.get("/boom/7").status_code == 500
    assert client.post("/healthz").status_code == 405
    assert staff.get(f"/admin/auth/user/{admin.pk}/change/").status_code == 200

    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "http_requests_total"
    assert delta(requests, method="GET", route="/healthz", status="200") == 3
    assert delta(requests, method="POST", route="/healthz", status="405") == 1
    assert delta(requests, method="GET", route="/boom/<int:number>", status="500") == 1
    assert delta(requests, method="GET", route="<unmatched>", status="404") == 1
    change_page = "/admin/auth/user/<path:object_id>/change/"
    assert delta(requests, method="GET", route=change_page, status="200") == 1
    assert (
        delta("http_request_duration_seconds_count", method="GET", route="/healthz")
        == 3
    )
    # Routes, never raw paths: no id or unknown path becomes a label value.
    routes = {dict(labels).get("route", "") for _, labels in after}
    assert not any(str(admin.pk) in r or "12345" in r or "/7" in r for r in routes)


def test_metrics_include_the_task_layer_and_need_no_token(client: Client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    body = response.content.decode()
    for family in (
        "queue_jobs_enqueued_total",
        "queue_jobs_republished_total",
        "http_request_duration_seconds",
    ):
        assert f"# TYPE {family.removesuffix('_total')}" in body, family


def test_metrics_output_passes_promtool_lint(client: Client, tmp_path: Path) -> None:
    client.get("/healthz")
    promtool = find_tool("promtool")
    result = subprocess.run(
        [str(promtool), "check", "metrics"],
        input=client.get("/metrics").content,
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- gunicorn with several processes -------------------------------------------------


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """gunicorn with two worker processes and the multi-process metrics dir."""
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    # Left over from an earlier run: start-up must clear it, not add it in.
    (metrics_dir / "counter_999999.db").write_bytes(b"not a metrics file")
    port = free_port()
    env = {
        **os.environ,
        "DEBUG": "1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "LOG_FORMAT": "json",
    }
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--config",
            "deploy/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "config.wsgi:application",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            http_get(f"{base}/healthz")
        except OSError:
            return False
        # Both processes have loaded the app once their metric files exist.
        pids = {p.stem.rsplit("_", 1)[-1] for p in metrics_dir.glob("counter_*.db")}
        return len(pids) >= 2

    try:
        wait_for(ready, timeout=30, interval=0.1)
        yield lambda: base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def test_gunicorn_metrics_add_up_every_worker_process(
    gunicorn: Callable[[], str],
) -> None:
    base = gunicorn()
    before = parse(http_get(f"{base}/metrics"))
    for _ in range(20):
        http_get(f"{base}/healthz")
    # Whichever process answers the scrape reports the total of both.
    for _ in range(6):
        after = parse(http_get(f"{base}/metrics"))
        count = value(
            after, "http_requests_total", method="GET", route="/healthz", status="200"
        ) - value(
            before, "http_requests_total", method="GET", route="/healthz", status="200"
        )
        assert count == 20


# --- A worker's metrics port --------------------------------------------------------


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("queue_tables")
def test_worker_metrics_after_real_jobs(
    kafka: KafkaNames, start_worker: Callable[..., subprocess.Popen]
) -> None:
    from prometheus_client import REGISTRY

    enqueued_before = REGISTRY.get_sample_value("queue_jobs_enqueued_total") or 0.0
    port = free_port()
    start_worker("--concurrency", "2", "--metrics-port", str(port))
    with transaction.atomic():
        ids = tasks.create_jobs(5, prefix="metrics")
        for job_id in ids:
            tasks.record_job.enqueue(job_id=job_id)
    assert get_publisher().flush(10)
    wait_for(lambda: tasks.job_counts().get("done", 0) == 5)
    enqueued = REGISTRY.get_sample_value("queue_jobs_enqueued_total") or 0.0
    assert enqueued - enqueued_before == 5

    url = f"http://127.0.0.1:{port}/metrics"

    def worker_samples() -> Samples | None:
        samples = parse(http_get(url))
        # The outcome is counted after the job's offset work; lag comes from
        # librdkafka's statistics every few seconds.
        if value(samples, "queue_jobs_completed_total") < 5:
            return None
        lag = [
            v
            for (name, labels), v in samples.items()
            if name == "queue_consumer_lag" and ("topic", kafka.job_topic) in labels
        ]
        return samples if lag else None

    samples = wait_for(worker_samples, timeout=20, interval=0.5)
    assert isinstance(samples, dict)
    assert value(samples, "queue_jobs_started_total") == 5
    assert value(samples, "queue_jobs_completed_total") == 5
    assert value(samples, "queue_pickup_latency_seconds_count") == 5
    assert value(samples, "queue_job_run_seconds_count") == 5
    assert value(samples, "queue_jobs_in_flight") == 0
    partitions = {
        dict(labels)["partition"]: v
        for (name, labels), v in samples.items()
        if name == "queue_consumer_lag" and ("topic", kafka.job_topic) in labels
    }
    # Every publish is a Kafka transaction whose commit marker takes an offset
    # after the last job; a drained partition can show that one as lag.
    assert partitions and all(lag <= 1 for lag in partitions.values())
