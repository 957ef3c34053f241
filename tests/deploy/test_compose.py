"""The compose files, checked by the Compose CLI itself (`docker-compose config`).

`config` loads, interpolates, merges and validates a file exactly as `up`
would, without a Docker engine. The tests then read its normalised JSON.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT
from tests.deploy.conftest import Run

DEV = "docker-compose.yml"
PROD = "docker-compose.prod.yml"
APP_SERVICES = ("migrate", "web", "worker")
PROD_REQUIRED = {
    "IMAGE_TAG": "1.4.0",
    "SECRET_KEY": "a-real-secret-from-the-vault",
    "POSTGRES_PASSWORD": "0123456789abcdef",
    "ALLOWED_HOSTS": "cv.example.com",
}
# Our code reads these straight from the process environment, not settings.
PROCESS_ENV_SOURCES = (
    "config/**/*.py",
    "queueing/**/*.py",
    "evaluations/**/*.py",
    "deploy/gunicorn.conf.py",
)


def compose_env(**variables: str) -> dict[str, str]:
    """A clean environment: nothing from the developer's shell leaks in."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", **variables}


def load(compose: Run, file: str, *args: str, **variables: str) -> dict[str, Any]:
    result = compose(
        "--env-file",
        "/dev/null",
        "-f",
        file,
        *args,
        "config",
        "--format",
        "json",
        env=compose_env(**variables),
    )
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def dev(compose: Run) -> dict[str, Any]:
    return load(compose, DEV)


@pytest.fixture(scope="module")
def prod(compose: Run) -> dict[str, Any]:
    return load(compose, PROD, **PROD_REQUIRED)


def command_text(service: dict[str, Any]) -> str:
    return " ".join(
        [*(service.get("entrypoint") or []), *(service.get("command") or [])]
    )


# --- Both files are valid -------------------------------------------------------


def test_both_files_validate_with_and_without_the_monitoring_profile(
    compose: Run,
) -> None:
    for file, variables in ((DEV, {}), (PROD, PROD_REQUIRED)):
        for profile in ([], ["--profile", "monitoring"]):
            compose(
                "--env-file",
                "/dev/null",
                "-f",
                file,
                *profile,
                "config",
                "--quiet",
                env=compose_env(**variables),
            )


def test_monitoring_profile_adds_prometheus_and_grafana(compose: Run) -> None:
    for file, variables in ((DEV, {}), (PROD, PROD_REQUIRED)):
        plain = load(compose, file, **variables)["services"]
        monitored = load(compose, file, "--profile", "monitoring", **variables)
        assert {"prometheus", "grafana"}.isdisjoint(plain)
        services = monitored["services"]
        assert {"prometheus", "grafana"} <= set(services)
        mounts = {m["target"]: m["source"] for m in services["prometheus"]["volumes"]}
        assert mounts["/etc/prometheus/prometheus.yml"].endswith(
            "deploy/prometheus.yml"
        )
        assert mounts["/etc/prometheus/alerts.yml"].endswith("deploy/alerts.yml")
        grafana = {m["target"]: m["source"] for m in services["grafana"]["volumes"]}
        assert grafana["/etc/grafana/dashboards"].endswith("deploy/grafana/dashboards")
        assert grafana["/etc/grafana/provisioning"].endswith(
            "deploy/grafana/provisioning"
        )


# --- Development stack ------------------------------------------------------------


def test_dev_stack_has_redpanda_console_and_postgres(dev: dict[str, Any]) -> None:
    services = dev["services"]
    redpanda = services["redpanda"]
    published = {(p["published"], p["target"]) for p in redpanda["ports"]}
    assert ("19092", 19092) in published
    assert "--mode=dev-container" in redpanda["command"]
    assert "internal://redpanda:9092" in command_text(redpanda)
    assert "external://localhost:19092" in command_text(redpanda)

    console = services["console"]
    assert {(p["published"], p["target"]) for p in console["ports"]} == {("8090", 8080)}
    assert console["environment"]["KAFKA_BROKERS"] == "redpanda:9092"

    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:15")
    assert any(
        v["type"] == "volume" and v["target"] == "/var/lib/postgresql/data"
        for v in postgres["volumes"]
    )


def test_dev_stack_starts_in_order_with_health_checks(dev: dict[str, Any]) -> None:
    services = dev["services"]
    for name in ("redpanda", "postgres", "web", "worker"):
        assert services[name]["healthcheck"]["test"], name

    migrate = services["migrate"]
    assert "migrate --noinput" in command_text(migrate)
    assert "ensure_topics" in command_text(migrate)
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["depends_on"]["redpanda"]["condition"] == "service_healthy"
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert {(p["published"], p["target"]) for p in services["web"]["ports"]} == {
        ("8000", 8000)
    }
    assert "run_evaluation_worker" in command_text(services["worker"])


def test_dev_services_have_stable_distinct_producer_hosts(dev: dict[str, Any]) -> None:
    services = dev["services"]
    hosts = {
        name: services[name]["environment"]["KAFKA_PRODUCER_HOST"]
        for name in ("web", "worker")
    }
    assert hosts == {"web": "web", "worker": "worker"}
    # Replicas of a service share its slot-lock directory, so a fixed host
    # name still yields one transactional.id per process.
    for name in ("web", "worker"):
        lock_mounts = [
            v for v in services[name]["volumes"] if v["target"] == "/data/slots"
        ]
        assert lock_mounts and lock_mounts[0]["type"] == "volume", name
    assert (
        services["web"]["environment"]["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/prometheus"
    )


# --- Production stack ----------------------------------------------------------------


@pytest.mark.parametrize("missing", sorted(PROD_REQUIRED))
def test_prod_refuses_to_start_without_each_required_secret(
    compose: Run, missing: str
) -> None:
    variables = {k: v for k, v in PROD_REQUIRED.items() if k != missing}
    result = compose(
        "--env-file",
        "/dev/null",
        "-f",
        PROD,
        "config",
        "--quiet",
        env=compose_env(**variables),
        check=False,
    )
    assert result.returncode != 0
    assert f"{missing} is required" in result.stderr


def test_prod_has_no_default_secrets(prod: dict[str, Any]) -> None:
    services = prod["services"]
    assert services["web"]["environment"]["SECRET_KEY"] == PROD_REQUIRED["SECRET_KEY"]
    assert services["web"]["environment"]["DEBUG"] == "0"
    assert (
        PROD_REQUIRED["POSTGRES_PASSWORD"]
        in (services["worker"]["environment"]["DATABASE_URL"])
    )
    assert (
        services["postgres"]["environment"]["POSTGRES_PASSWORD"]
        == PROD_REQUIRED["POSTGRES_PASSWORD"]
    )
    text = (PROJECT_ROOT / PROD).read_text()
    for variable in ("SECRET_KEY", "POSTGRES_PASSWORD"):
        assert re.search(rf"\${{{variable}:-", text) is None, variable


def test_prod_runs_released_images_without_source_mounts(
    prod: dict[str, Any],
) -> None:
    services = prod["services"]
    for name in APP_SERVICES:
        service = services[name]
        assert "build" not in service, name
        assert service["image"].endswith(":1.4.0"), name
        for volume in service.get("volumes", []):
            assert volume["type"] == "volume", (name, volume)


def test_prod_services_restart_and_have_resource_limits(
    prod: dict[str, Any],
) -> None:
    for name, service in prod["services"].items():
        if name == "migrate":
            assert service["restart"] == "no"
            continue
        assert service["restart"] == "unless-stopped", name
        limits = service["deploy"]["resources"]["limits"]
        assert limits["memory"] and limits["cpus"], name


def test_prod_runs_several_workers_with_unique_producer_ids(
    prod: dict[str, Any],
) -> None:
    worker = prod["services"]["worker"]
    assert worker["deploy"]["replicas"] >= 2
    assert worker["environment"]["KAFKA_PRODUCER_HOST"] == "worker"
    assert {v["source"] for v in worker["volumes"] if v["target"] == "/data/slots"} == {
        "worker-slots"
    }
    # Prometheus scrapes each replica from another container.
    assert worker["environment"]["WORKER_METRICS_ADDR"] == "0.0.0.0"  # noqa: S104
    # Longer than the worker's own grace period, so SIGTERM drains in-flight jobs.
    grace = int(worker["environment"]["WORKER_SHUTDOWN_GRACE_SECONDS"])
    assert int(worker["stop_grace_period"].rstrip("s")) > grace


def test_prod_redpanda_is_configured_for_production(prod: dict[str, Any]) -> None:
    redpanda = prod["services"]["redpanda"]
    command = command_text(redpanda)
    assert "dev-container" not in command
    assert "--overprovisioned" not in command
    assert "redpanda.developer_mode false" in command
    for flag in ("--smp=", "--memory=", "--reserve-memory="):
        assert flag in command, flag
    assert any(
        v["type"] == "volume" and v["target"] == "/var/lib/redpanda/data"
        for v in redpanda["volumes"]
    )
    bootstrap = {v["target"]: v["source"] for v in redpanda["volumes"]}[
        "/etc/redpanda/.bootstrap.yaml"
    ]
    assert "auto_create_topics_enabled: false" in Path(bootstrap).read_text()
    # Console only on loopback in production.
    (port,) = prod["services"]["console"]["ports"]
    assert port["host_ip"] == "127.0.0.1" and port["published"] == "8090"
    assert "ports" not in redpanda


def test_prometheus_can_reach_web_metrics_by_service_name(
    dev: dict[str, Any], prod: dict[str, Any]
) -> None:
    for stack in (dev, prod):
        hosts = stack["services"]["web"]["environment"]["ALLOWED_HOSTS"].split(",")
        assert "web" in hosts
    prod_hosts = prod["services"]["web"]["environment"]["ALLOWED_HOSTS"]
    assert prod_hosts.startswith(PROD_REQUIRED["ALLOWED_HOSTS"])


# --- One set of variable names everywhere ------------------------------------------


def settings_variables() -> set[str]:
    text = (PROJECT_ROOT / "config" / "settings.py").read_text()
    return set(re.findall(r"\benv(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]*)\"", text))


def process_environment_variables() -> set[str]:
    pattern = re.compile(
        r"os\.environ(?:\.get\(|\[)\s*[\"']([A-Z][A-Z0-9_]*)[\"']|"
        r"os\.getenv\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']"
    )
    names: set[str] = set()
    for glob in PROCESS_ENV_SOURCES:
        for path in PROJECT_ROOT.glob(glob):
            for match in pattern.finditer(path.read_text()):
                names.add(match.group(1) or match.group(2))
    return names


def env_example_variables() -> set[str]:
    text = (PROJECT_ROOT / ".env.example").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_settings_variables_are_all_documented_in_env_example() -> None:
    from_settings = settings_variables()
    assert {"SECRET_KEY", "DATABASE_URL", "KAFKA_BROKERS"} <= from_settings
    missing = from_settings - env_example_variables()
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_compose_sets_only_variables_the_app_reads(
    dev: dict[str, Any], prod: dict[str, Any]
) -> None:
    known = settings_variables() | process_environment_variables()
    assert "KAFKA_PRODUCER_HOST" in known and "WEB_CONCURRENCY" in known
    documented = env_example_variables()
    for stack in (dev, prod):
        for name in APP_SERVICES:
            variables = set(stack["services"][name]["environment"])
            assert variables, name
            assert not variables - known, (name, sorted(variables - known))
            assert not variables - documented, (name, sorted(variables - documented))
