# Vitrine: the whole platform (portal, admin, orchestrator + bot workers) under supervisord.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# redis-server only serves the embedded default (REDIS_URL unset); compose uses its own Redis.
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 vitrine

WORKDIR /app
COPY pyproject.toml README.md ./
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
RUN pip install -e . \
    && mkdir -p data logs backups \
    && chown -R vitrine:vitrine /app/data /app/logs /app/backups \
    && chmod 700 /app/backups

USER vitrine
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
CMD ["vitrine", "run"]
