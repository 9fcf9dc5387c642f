#!/usr/bin/env bash
# Start the whole platform in the background (supervisord via `vitrine run`) and wait until
# the portal answers /health. Usage: scripts/run-bot.sh [timeout_seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
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
for ((i = 0; i < timeout_s * 2; i++)); do
  if curl -fsS "http://127.0.0.1:${port}/health" >/dev/null 2>&1; then
    echo "healthy: http://127.0.0.1:${port}/health"
    "$bin/supervisorctl" -c supervisord.conf status || true
    exit 0
  fi
  sleep 0.5
done
echo "not healthy after ${timeout_s}s; last lines of logs/vitrine.out.log:" >&2
tail -n 20 logs/vitrine.out.log >&2
exit 1
