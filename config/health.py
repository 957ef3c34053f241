"""Liveness and readiness endpoints (no authentication)."""

from __future__ import annotations

import time

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from queueing.topics import broker_reachable

READINESS_TIMEOUT_SECONDS = 2.0


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return False, type(exc).__name__
    return True, "reachable"


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {}
    for name, check in (
        ("database", _check_database),
        ("kafka", lambda: broker_reachable(READINESS_TIMEOUT_SECONDS)),
    ):
        started = time.perf_counter()
        ok, detail = check()
        checks[name] = {
            "ok": ok,
            "detail": detail,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        }
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )
