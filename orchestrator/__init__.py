"""The orchestrator daemon: keeps every tenant bot that should run, running."""
