# Stop Vitrine cleanly with Docker Compose: bot workers first, then the containers.
# Usage: powershell -ExecutionPolicy Bypass -File scripts/stop-bot.ps1
$ErrorActionPreference = "Continue"
Set-Location (Join-Path $PSScriptRoot "..")
docker compose exec -T bot vitrine fleet stop
if ($LASTEXITCODE -ne 0) { Write-Warning "could not stop the workers through the orchestrator" }
docker compose stop
docker compose ps
