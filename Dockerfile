# syntax=docker/dockerfile:1
# OpsConductor Event Engine: one image for every Procfile process type.
#
#   docker build -t opsconductor .
#   docker run --init -e DATABASE_URL=... -e RABBITMQ_URL=... opsconductor release   # migrate, once per deploy
#   docker run --init -p 3009:3009 -e ... opsconductor web                           # or normalize, syslog, clock, ...
#
# The command is a process type of the Procfile, read at run time by scripts/docker-entrypoint.sh;
# `compose.yaml` runs the whole deployment. Dependencies come pinned from requirements.txt
# (`make requirements`), built as wheels in a stage with compilers that the final image leaves behind.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
# Compilers only for a dependency without a wheel for this platform; none of them reaches the final stage.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential libpq-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY requirements.txt ./
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt
COPY setup.cfg pyproject.toml README.md ./
COPY app ./app
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim-bookworm
LABEL org.opencontainers.image.title="OpsConductor Event Engine" \
      org.opencontainers.image.licenses="Apache-2.0"
# tzdata: BUSINESS_TIMEZONE and maintenance windows name IANA zones.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/*
# Wheels only, no index: the final stage installs exactly what the builder built from the pins
# (opsconductor itself is the one wheel built from this tree, so it needs no pin: DL3013).
# hadolint ignore=DL3013
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \
    pip install --no-cache-dir --no-index --find-links=/wheels -r /tmp/requirements.txt \
    && pip install --no-cache-dir --no-index --no-deps --find-links=/wheels opsconductor
RUN groupadd --system --gid 10001 opsconductor \
    && useradd --system --uid 10001 --gid opsconductor --home-dir /app --shell /usr/sbin/nologin opsconductor \
    && mkdir -p /app/var/spool \
    && chown -R opsconductor:opsconductor /app/var
WORKDIR /app
COPY Procfile ./
COPY scripts/docker-entrypoint.sh ./scripts/
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=3009 \
    SPOOL_DIR=/app/var/spool
# Receivers spool here while RabbitMQ is away: keep it on a volume so a restart replays it.
VOLUME ["/app/var/spool"]
EXPOSE 3009/tcp 5514/udp 5514/tcp 6514/tcp 1162/udp
# Numeric, so a runtime that checks runAsNonRoot can tell without reading /etc/passwd.
USER 10001:10001
# web: GET /healthz; syslog: its TCP listener; the other types are healthy while their process runs.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/app/scripts/docker-entrypoint.sh", "--healthcheck"]
ENTRYPOINT ["/app/scripts/docker-entrypoint.sh"]
CMD ["web"]
