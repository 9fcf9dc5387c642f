# Start Vitrine with Docker Compose (Windows operators) and wait until /health answers.
# Usage: powershell -ExecutionPolicy Bypass -File scripts/run-bot.ps1
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..")
docker compose up -d --build
if ($LASTEXITCODE -ne 0) { Write-Error "docker compose up failed"; exit 1 }
# compose publishes the portal on PORTAL_HOST_PORT (environment or .env), default 3100
$port = $env:PORTAL_HOST_PORT
if (-not $port -and (Test-Path .env)) {
    $line = Select-String -Path .env -Pattern '^PORTAL_HOST_PORT=(.+)$' | Select-Object -Last 1
    if ($line) { $port = $line.Matches[0].Groups[1].Value }
}
if (-not $port) { $port = "3100" }
$deadline = (Get-Date).AddSeconds(180)
while ((Get-Date) -lt $deadline) {
    try {
        $r = Invoke-WebRequest -UseBasicParsing -TimeoutSec 3 "http://127.0.0.1:$port/health"
        if ($r.StatusCode -eq 200) {
            Write-Host "healthy: http://127.0.0.1:$port/health"
            docker compose ps
            exit 0
        }
    } catch { Start-Sleep -Seconds 2 }
}
Write-Error "not healthy after 180s; see: docker compose logs bot --tail=120"
exit 1
