"""The image definition (linted by hadolint) and the gunicorn config it runs."""

from __future__ import annotations

import fnmatch
import re
import runpy
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT
from tests.deploy.conftest import Run

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
GUNICORN_CONF = PROJECT_ROOT / "deploy" / "gunicorn.conf.py"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, rest))
    return found


def test_hadolint_passes(hadolint: Run) -> None:
    result = hadolint("--no-color", str(DOCKERFILE))
    assert result.stdout == ""


def test_multi_stage_build_on_python_311_slim() -> None:
    build, runtime = stages()
    image_arg = next(rest for keyword, rest in instructions() if keyword == "ARG")
    assert image_arg.startswith("PYTHON_IMAGE=python:3.11-slim")
    assert build[0][1].startswith("${PYTHON_IMAGE} AS build")
    assert runtime[0][1].startswith("${PYTHON_IMAGE} AS runtime")
    assert any("pip install" in rest for keyword, rest in build if keyword == "RUN")
    runtime_copies = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert "--from=build /opt/venv /opt/venv" in runtime_copies
    # No compilers or package installs in the image that ships.
    runtime_runs = " ".join(rest for keyword, rest in runtime if keyword == "RUN")
    assert not re.search(r"apt-get|apk |gcc|build-essential|pip install", runtime_runs)


def test_runtime_runs_as_non_root_and_collects_static_at_build() -> None:
    runtime = stages()[-1]
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    collect = [
        rest
        for keyword, rest in runtime
        if keyword == "RUN" and "collectstatic" in rest
    ]
    assert collect and "SECRET_KEY=" in collect[0] and "DEBUG=0" in collect[0]
    # collectstatic runs before USER, so the files are root-owned and read-only.
    keywords = [keyword for keyword, _ in runtime]
    assert keywords.index("USER") > max(
        i for i, (k, r) in enumerate(runtime) if k == "RUN" and "collectstatic" in r
    )


def test_default_command_is_gunicorn_with_the_project_config() -> None:
    (command,) = [rest for keyword, rest in instructions() if keyword == "CMD"]
    assert command.startswith("[")  # exec form: gunicorn gets the signals
    assert '"gunicorn"' in command and '"config.wsgi:application"' in command
    assert '"deploy/gunicorn.conf.py"' in command


def test_dependency_step_installs_exactly_the_pyproject_dependencies(
    tmp_path: Path,
) -> None:
    (run,) = [
        rest
        for keyword, rest in instructions()
        if keyword == "RUN" and "tomllib" in rest
    ]
    words = shlex.split(run.split(">")[0])
    assert words[:2] == ["python", "-c"]
    (tmp_path / "pyproject.toml").write_bytes(
        (PROJECT_ROOT / "pyproject.toml").read_bytes()
    )
    output = subprocess.run(
        [sys.executable, "-c", words[2]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    with open(PROJECT_ROOT / "pyproject.toml", "rb") as handle:
        expected = tomllib.load(handle)["project"]["dependencies"]
    assert output.splitlines() == expected


def dockerignored(path: str) -> bool:
    """Whether `path` is left out of the build context (last match wins)."""
    ignored = False
    for raw in (PROJECT_ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").lstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(prefix, f"**/{pattern}")
            for prefix in prefixes
        ):
            ignored = not negate
    return ignored


def test_build_context_has_the_app_and_leaves_out_secrets_and_clutter() -> None:
    for needed in (
        "manage.py",
        "pyproject.toml",
        "config/settings.py",
        "evaluations/models.py",
        "queueing/consumer.py",
        "deploy/gunicorn.conf.py",
    ):
        assert not dockerignored(needed), needed
    for left_out in (
        ".env",
        ".git/HEAD",
        ".venv/bin/python",
        ".local/media/x.pdf",
        "tests/conftest.py",
        "deploy/alerts.yml",
        "evaluations/__pycache__/models.cpython-311.pyc",
    ):
        assert dockerignored(left_out), left_out


# --- deploy/gunicorn.conf.py ------------------------------------------------------


def load_gunicorn_config(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    for name in (
        "PORT",
        "WEB_CONCURRENCY",
        "GUNICORN_TIMEOUT",
        "LOG_FORMAT",
        "PROMETHEUS_MULTIPROC_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(GUNICORN_CONF))


def test_gunicorn_config_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = load_gunicorn_config(monkeypatch)
    assert (defaults["bind"], defaults["workers"], defaults["timeout"]) == (
        "0.0.0.0:8000",
        2,
        60,
    )
    assert "logconfig_dict" not in defaults
    tuned = load_gunicorn_config(
        monkeypatch,
        PORT="9000",
        WEB_CONCURRENCY="5",
        GUNICORN_TIMEOUT="120",
        LOG_FORMAT="json",
    )
    assert (tuned["bind"], tuned["workers"], tuned["timeout"]) == (
        "0.0.0.0:9000",
        5,
        120,
    )
    formatter = tuned["logconfig_dict"]["formatters"]["json"]["()"]
    assert formatter == "config.logging.JsonFormatter"


def test_gunicorn_hooks_reset_and_clean_the_metrics_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    directory = tmp_path / "prometheus"
    config = load_gunicorn_config(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(directory))
    config["on_starting"](None)
    assert directory.is_dir()

    (directory / "counter_111.db").write_bytes(b"stale")
    config["on_starting"](None)
    assert list(directory.iterdir()) == []

    (directory / "gauge_livesum_222.db").write_bytes(b"")
    (directory / "counter_222.db").write_bytes(b"")

    class ExitedWorker:
        pid = 222

    config["child_exit"](None, ExitedWorker())
    # Live gauges of a dead process go; its counters stay in the totals.
    assert sorted(p.name for p in directory.iterdir()) == ["counter_222.db"]
