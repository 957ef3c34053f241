"""Gunicorn settings for the web app, read from the environment.

Used by the container image (`gunicorn --config deploy/gunicorn.conf.py
config.wsgi:application`) and usable as is outside it.

    PORT                      port to listen on (default 8000)
    WEB_CONCURRENCY           worker processes (default 2)
    GUNICORN_TIMEOUT          seconds before a silent worker is restarted (default 60)
    PROMETHEUS_MULTIPROC_DIR  directory for per-process metric files; emptied here
                              at start-up, see config/metrics.py
    LOG_FORMAT=json           gunicorn's own log lines as JSON too
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Heartbeat files in memory: a slow container filesystem must not make the
# arbiter think a busy worker hung.
SHARED_MEMORY = Path("/dev/shm")  # noqa: S108 - gunicorn's documented choice
worker_tmp_dir = str(SHARED_MEMORY) if SHARED_MEMORY.is_dir() else None
# Django writes the access log (logger `config.access`): with the URL route,
# the status, the duration and the request id, in the configured format.
accesslog = None
errorlog = "-"

if os.environ.get("LOG_FORMAT", "text") == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
        "filters": {"redact": {"()": "config.logging.RedactingFilter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            },
        },
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {
                "level": "INFO",
                "handlers": ["console"],
                "propagate": False,
            },
        },
    }


def on_starting(server: Any) -> None:
    """Start with an empty metrics directory: old files would be added up again."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """Drop an exited worker's live gauges from the aggregated metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
