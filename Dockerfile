# syntax=docker/dockerfile:1
# The nav-rewards server image: `rewards serve` as an unprivileged user, configured by environment
# variables (see README "Configuration" and docs/deploy.md). Two stages: the first builds wheels of
# the project and every dependency (the build tools stay there), the second installs only those
# wheels on a clean slim Python. The `events` extra (aio-pika) is included so
# ENABLE_EVENT_MANAGER=true works without another image; the dev extras are not.
#
#   docker build -t nav-rewards .
#   docker run --rm -p 3978:3978 -e DATABASE_URL=postgresql://... nav-rewards

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- build: wheels for the project and its dependencies ------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_NO_INPUT=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY rewards ./rewards
COPY dialogs ./dialogs
COPY cards ./cards
COPY bots ./bots
# The wheel set is exactly the project plus what it and the events extra need; the list of its
# files is what the runtime stage installs.
RUN pip wheel --wheel-dir /wheels ".[events]" \
    && printf '%s\n' /wheels/*.whl > /wheels/requirements.txt

# ---- runtime ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_NO_INPUT=1 \
    PIP_ROOT_USER_ACTION=ignore \
    HOST=0.0.0.0 \
    PORT=3978 \
    REWARDS_CATALOG=

# Only the wheels built above, never the index: the image holds exactly what was built.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels --requirement /wheels/requirements.txt \
    && groupadd --system --gid 10001 rewards \
    && useradd --system --uid 10001 --gid rewards --home-dir /app --shell /usr/sbin/nologin rewards \
    && mkdir -p /app/var /app/catalog \
    && chown rewards:rewards /app/var

WORKDIR /app
COPY deploy/healthcheck.py /app/healthcheck.py

USER 10001:10001
EXPOSE 3978

# /healthz answers 200 while the database answers; 503 (or no answer) marks the container unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/app/healthcheck.py"]

CMD ["rewards", "serve"]
