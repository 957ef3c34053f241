"""API latency: `POST /v1/evaluate` under gunicorn at 50 concurrent clients.

wrk (Debian's package) drives a fixed-duration closed loop from a second
process; every request creates a job and publishes it after the commit.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.harness import PROJECT_ROOT, bench_fixtures, fresh_topics, worker_env

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if match is None:
        raise ValueError(f"unexpected wrk latency {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, float]:
    percentiles = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)$", output, re.MULTILINE))
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if not percentiles or rps is None:
        raise ValueError("could not read wrk's output:\n" + output)
    return {
        "p50": _ms(percentiles["50"]),
        "p90": _ms(percentiles["90"]),
        "p99": _ms(percentiles["99"]),
        "rps": float(rps.group(1)),
        "errors": float(non_2xx.group(1)) if non_2xx else 0.0,
    }


def run(
    *, seconds: int = 10, connections: int = 50, web_workers: int = 4
) -> dict[str, float]:
    from evaluations.services import api_token_create

    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (scripts/install-bench-tools.sh)")
    user, cv_id, project_id = bench_fixtures()
    token = api_token_create(username=user.get_username())  # type: ignore[attr-defined]
    port = _free_port()
    with fresh_topics("api") as topics, tempfile.TemporaryDirectory() as tmp:
        env = worker_env(topics)
        env.update(
            {
                "THROTTLE_RATE_TOKEN": "1000000/sec",
                "THROTTLE_RATE_IP": "1000000/sec",
                "LOG_LEVEL": "WARNING",
            }
        )
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(web_workers),
                "--log-level",
                "warning",
            ],
            cwd=PROJECT_ROOT,
            env=env,
        )
        try:
            _wait_ready(port)
            script = Path(tmp) / "evaluate.lua"
            body = json.dumps({"cv_id": cv_id, "project_id": project_id})
            script.write_text(
                'wrk.method = "POST"\n'
                f"wrk.body = {json.dumps(body)}\n"
                'wrk.headers["Content-Type"] = "application/json"\n'
                f'wrk.headers["Authorization"] = "Token {token}"\n'
            )
            url = f"http://127.0.0.1:{port}/v1/evaluate"
            # A short warm-up: connections, imports and caches in every worker.
            subprocess.run(
                [wrk, "-t2", f"-c{connections}", "-d2s", "-s", str(script), url],
                check=True,
                capture_output=True,
            )
            result = subprocess.run(
                [
                    wrk,
                    "-t2",
                    f"-c{connections}",
                    f"-d{seconds}s",
                    "--latency",
                    "-s",
                    str(script),
                    url,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
    stats = parse_wrk(result.stdout)
    if stats["errors"]:
        raise RuntimeError(f"{stats['errors']:.0f} requests failed:\n{result.stdout}")
    return stats


def _wait_ready(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")
