"""`python -m bench`: run the benchmarks, print a table, write bench/results.json.

Every figure is the median of several runs; the table shows the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.json"

TARGETS = {
    ("pickup_latency_ms", "p50"): ("<=", 5.0),
    ("pickup_latency_ms", "p99"): ("<=", 20.0),
    ("throughput_jobs_per_s", "workers_1"): (">=", 1000.0),
    ("throughput_jobs_per_s", "workers_2"): (">=", 1000.0),
    ("evaluate_http_ms", "p50"): ("<=", 15.0),
}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _repeat(
    runs: int, label: str, func: Callable[[], dict[str, float]]
) -> list[dict[str, float]]:
    results = []
    for n in range(1, runs + 1):
        started = time.monotonic()
        result = func()
        print(
            f"  {label} run {n}/{runs}: "
            + ", ".join(f"{k}={v:.1f}" for k, v in result.items())
            + f"  ({time.monotonic() - started:.0f}s)",
            flush=True,
        )
        results.append(result)
    return results


def _summarise(
    runs: list[dict[str, float]], keys: list[str]
) -> dict[str, dict[str, float]]:
    return {
        key: {
            "median": statistics.median(run[key] for run in runs),
            "min": min(run[key] for run in runs),
            "max": max(run[key] for run in runs),
        }
        for key in keys
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "--only", choices=["pickup", "throughput", "api"], action="append"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pickup-jobs", type=int, default=1000)
    parser.add_argument("--throughput-jobs", type=int, default=20000)
    parser.add_argument("--enqueuers", type=int, default=8)
    parser.add_argument("--api-seconds", type=int, default=10)
    args = parser.parse_args()
    wanted = set(args.only or ["pickup", "throughput", "api"])

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Measure the production configuration: DEBUG records every SQL query.
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
    import django

    django.setup()
    from bench import api, pickup, throughput
    from bench.harness import delete_bench_jobs

    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    summary: dict[str, dict] = {}
    raw: dict[str, list] = {}
    delete_bench_jobs()
    try:
        if "pickup" in wanted:
            print("pickup latency", flush=True)
            runs = _repeat(
                args.runs, "pickup", lambda: pickup.run(jobs=args.pickup_jobs)
            )
            raw["pickup"] = runs
            summary["pickup_latency_ms"] = _summarise(
                runs, ["p50", "p90", "p99", "max"]
            )
            delete_bench_jobs()
        if "throughput" in wanted:
            print("throughput", flush=True)

            def one_round() -> dict[str, float]:
                result = {
                    "enqueue": throughput.run_enqueue_only(
                        jobs=args.throughput_jobs, enqueuers=args.enqueuers
                    )
                }
                delete_bench_jobs()
                for count in (1, 2):
                    result[f"workers_{count}"] = throughput.run_with_workers(
                        jobs=args.throughput_jobs,
                        worker_count=count,
                        enqueuers=args.enqueuers,
                    )
                    delete_bench_jobs()
                return result

            runs = _repeat(args.runs, "throughput", one_round)
            raw["throughput"] = runs
            summary["throughput_jobs_per_s"] = _summarise(
                runs, ["workers_1", "workers_2", "enqueue"]
            )
        if "api" in wanted:
            print("POST /v1/evaluate at 50 clients", flush=True)
            runs = _repeat(args.runs, "api", lambda: api.run(seconds=args.api_seconds))
            raw["api"] = runs
            summary["evaluate_http_ms"] = _summarise(runs, ["p50", "p90", "p99", "rps"])
            delete_bench_jobs()
    finally:
        delete_bench_jobs()

    machine = {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    print()
    print(f"machine: {machine['cores']} cores, {machine['cpu']}; {machine['date']}")
    print(f"{'metric':<36}{'median':>10}{'min':>10}{'max':>10}   target")
    for group, metrics in summary.items():
        for key, values in metrics.items():
            target = TARGETS.get((group, key))
            verdict = ""
            if target:
                op, bound = target
                met = (
                    values["median"] <= bound
                    if op == "<="
                    else values["median"] >= bound
                )
                verdict = f"{op} {bound:g}  {'met' if met else 'MISSED'}"
            print(
                f"{group + '.' + key:<36}{values['median']:>10.1f}"
                f"{values['min']:>10.1f}{values['max']:>10.1f}   {verdict}"
            )

    results = {**previous}
    for group, metrics in summary.items():
        results[group] = {key: round(v["median"], 2) for key, v in metrics.items()}
        results.setdefault("spread", {})[group] = {
            key: [round(v["min"], 2), round(v["max"], 2)] for key, v in metrics.items()
        }
    results["machine"] = machine
    results["runs"] = {**previous.get("runs", {}), **raw}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
