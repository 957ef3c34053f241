# syntax=docker/dockerfile:1
#
# One image for the web app and the workers.
#   web (default command): gunicorn with deploy/gunicorn.conf.py
#   worker:                python manage.py run_evaluation_worker
#
#   docker build -t ai-cv-evaluator:1.4.0 .
#
# The build stage installs the dependencies into a virtualenv; the runtime
# stage copies that virtualenv and the source, and has no compilers, no pip
# cache and no build tools. Everything it needs comes as wheels (psycopg's
# binary build, confluent-kafka with librdkafka inside).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /build
# Only pyproject.toml: this layer is rebuilt when the dependencies change, not
# on every source change. The app itself runs from /app (next stage), where
# manage.py, templates and the settings' BASE_DIR-relative paths live.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" >requirements.txt \
    && pip install --no-cache-dir -r requirements.txt


FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    PORT=8000 \
    STATIC_ROOT=/app/staticfiles \
    MEDIA_ROOT=/data/media \
    QUEUE_LOCK_DIR=/data/slots \
    CACHE_URL=filecache:///data/cache

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin app \
    && mkdir -p /data/media /data/slots /data/cache \
    && chown app:app /data/media /data/slots /data/cache

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# The source stays owned by root: the app user can read it, not change it.
COPY . .

# Static files are part of the image (served by WhiteNoise). The key below
# exists only for this command; the running app refuses to start without a
# real SECRET_KEY.
RUN DEBUG=0 SECRET_KEY=collectstatic-only-not-a-secret \
    python manage.py collectstatic --noinput --verbosity 0 \
    && python -m compileall -q config evaluations queueing

# Numeric, so orchestrators can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001

EXPOSE 8000

CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "config.wsgi:application"]
