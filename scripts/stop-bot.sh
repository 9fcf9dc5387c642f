#!/usr/bin/env bash
# Stop everything cleanly: first the bot workers (each closes its Discord session), then
# supervisord and its services. Usage: scripts/stop-bot.sh [--docker]
#   --docker  the Docker Compose install (as scripts/stop-bot.ps1): the workers, then the
#             containers (their volumes, with the data, stay).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--docker" ]; then
  echo "stopping bot workers..."
  docker compose exec -T bot vitrine fleet stop ||
    echo "warning: could not stop the workers through the orchestrator" >&2
  echo "stopping containers..."
  docker compose stop
  docker compose ps
  exit 0
fi
bin=.venv/bin
if ! "$bin/supervisorctl" -c supervisord.conf pid >/dev/null 2>&1; then
  echo "not running"
  exit 0
fi
echo "stopping bot workers..."
"$bin/vitrine" fleet stop || echo "warning: could not stop the workers through the orchestrator" >&2
echo "stopping services..."
"$bin/supervisorctl" -c supervisord.conf shutdown
for _ in $(seq 1 60); do
  "$bin/supervisorctl" -c supervisord.conf pid >/dev/null 2>&1 || { echo "stopped"; exit 0; }
  sleep 0.5
done
echo "supervisord did not exit within 30s" >&2
exit 1
