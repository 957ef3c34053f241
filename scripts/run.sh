#!/usr/bin/env bash
# Starts the web app (gunicorn) and one worker, prints where to go and an API
# token, and stops both on Ctrl-C. Called by `make run` after the set-up.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
PORT="${PORT:-8000}"
WEB_CONCURRENCY="${WEB_CONCURRENCY:-2}"
WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-4}"
mkdir -p .local/log

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "stopped (PostgreSQL and Kafka keep running; 'make infra-stop' stops them)"
}
trap stop INT TERM EXIT

# Metrics from every gunicorn process are combined through this directory.
export PROMETHEUS_MULTIPROC_DIR="$PWD/.local/prometheus"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
WEB_CONCURRENCY="$WEB_CONCURRENCY" .venv/bin/gunicorn config.wsgi:application \
  --config deploy/gunicorn.conf.py \
  --bind "127.0.0.1:${PORT}" &
pids+=($!)

# The worker serves its own /metrics; it does not share the web's directory.
PROMETHEUS_MULTIPROC_DIR= $PY manage.py run_evaluation_worker \
  --concurrency "$WORKER_CONCURRENCY" --skip-topic-check &
pids+=($!)

for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:${PORT}/healthz" >/dev/null 2>&1; then break; fi
  sleep 0.2
done

token="$($PY manage.py create_api_token --username demo --staff)"
cat <<MSG

  ai-cv-evaluator is running
    web:      http://127.0.0.1:${PORT}/        (admin: /admin/, API docs: /v1/docs)
    health:   http://127.0.0.1:${PORT}/readyz
    API token for user "demo":  ${token}

    curl -H "Authorization: Bearer ${token}" -F cv=@cv.pdf -F project=@report.pdf \\
         http://127.0.0.1:${PORT}/v1/upload

  Press Ctrl-C to stop.

MSG
wait -n "${pids[@]}"
