#!/usr/bin/env bash
# Start the whole platform in the background (supervisord via `vitrine run`) and wait until
# the portal answers /health. Usage: scripts/run-bot.sh [--docker] [timeout_seconds]
#   --docker  with Docker Compose instead of .venv (`docker compose up -d --build`, as
#             scripts/run-bot.ps1 does); the portal is on PORTAL_HOST_PORT (default 3100).
set -euo pipefail
cd "$(dirname "$0")/.."

wait_healthy() {  # wait_healthy PORT TIMEOUT_S: 0 once the portal's /health answers 200
  local i
  for ((i = 0; i < $2 * 2; i++)); do
    curl -fsS "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

if [ "${1:-}" = "--docker" ]; then
  timeout_s="${2:-180}"
  docker compose up -d --build
  # compose reads PORTAL_HOST_PORT from the environment or from .env
  port="${PORTAL_HOST_PORT:-$(sed -n 's/^PORTAL_HOST_PORT=//p' .env 2>/dev/null | tail -n 1)}"
  port="${port:-3100}"
  if wait_healthy "$port" "$timeout_s"; then
    echo "healthy: http://127.0.0.1:${port}/health"
    docker compose ps
    exit 0
  fi
  echo "not healthy after ${timeout_s}s; see: docker compose logs bot --tail=120" >&2
  exit 1
fi

timeout_s="${1:-90}"
bin=.venv/bin
if [ ! -x "$bin/vitrine" ]; then
  echo "installing into .venv (first run)..."
  make venv deps >/dev/null
fi
if "$bin/supervisorctl" -c supervisord.conf pid >/dev/null 2>&1; then
  echo "already running:"
  "$bin/supervisorctl" -c supervisord.conf status || true
  exit 0
fi
mkdir -p logs
nohup "$bin/vitrine" run > logs/vitrine.out.log 2>&1 &
echo "starting (pid $!), output in logs/vitrine.out.log"
port="$("$bin/python" -c 'from core.settings import load_settings; print(load_settings().portal_port)')"
if wait_healthy "$port" "$timeout_s"; then
  echo "healthy: http://127.0.0.1:${port}/health"
  "$bin/supervisorctl" -c supervisord.conf status || true
  exit 0
fi
echo "not healthy after ${timeout_s}s; last lines of logs/vitrine.out.log:" >&2
tail -n 20 logs/vitrine.out.log >&2
exit 1
