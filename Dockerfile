# Vitrine: the whole platform (portal, admin, orchestrator + bot workers) under supervisord.
# bookworm pinned: tini and setpriv (util-linux) as the entrypoint expects them.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# redis-server only serves the embedded default (REDIS_URL unset); compose uses its own Redis.
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server postgresql-client tini \
    && rm -rf /var/lib/apt/lists/* \
    && command -v setpriv >/dev/null \
    && groupadd --gid 10001 vitrine \
    && useradd --create-home --uid 10001 --gid 10001 vitrine

WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY core core
COPY fleet fleet
COPY shop shop
COPY sandbox sandbox
COPY web web
COPY worker worker
COPY orchestrator orchestrator
COPY reconciler reconciler
COPY ops ops
COPY migrations migrations
COPY supervisord.conf ./
COPY scripts/docker-entrypoint.sh /usr/local/bin/vitrine-entrypoint
# gcc only for worker/_pageshare.c (page sharing between the zygote and its workers), removed
# in the same layer; the import check fails the build if it was not compiled.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install -e . \
    && apt-get purge -y --auto-remove gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && python -c "import worker._pageshare" \
    && mkdir -p data logs backups \
    && chown -R vitrine:vitrine /app/data /app/logs /app/backups \
    && chmod 700 /app/backups \
    && chmod 755 /usr/local/bin/vitrine-entrypoint

# Runs as uid 10001. A new named volume (docker-compose.yml) starts with these folders'
# ownership, so it is writable as is. Started as root instead (`user: "0:0"`, for bind mounts
# Docker created as root), the entrypoint gives the state folders to uid 10001 and drops to it
# with setpriv before anything else runs. tini is PID 1: it forwards SIGTERM and reaps the
# workers the zygote leaves.
USER 10001:10001
# Production unless told otherwise: every secret must be given (nothing is generated into
# data/secrets.env); set VITRINE_ENV=development to try the embedded default.
# The admin API must be reachable through the published port; compose publishes it on the
# host's loopback only.
ENV VITRINE_ENV=production \
    ADMIN_BIND=0.0.0.0 \
    DATA_DIR=/app/data \
    LOG_DIR=/app/logs
VOLUME ["/app/data", "/app/logs", "/app/backups"]
EXPOSE 3100 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3100/health', timeout=4).status == 200 else 1)"
ENTRYPOINT ["tini", "--", "vitrine-entrypoint"]
CMD ["vitrine", "run"]
