#!/usr/bin/env bash
# Install agentroute and run the offline support-desk demo on SQLite (the main job).
# Extra arguments go to `agentroute demo` (e.g. --model openai/gpt-4o-mini with its key set).
source "$(dirname "$0")/_env.sh"
ar_install -e .
exec .venv/bin/agentroute demo --db "${AGENTROUTE_DB:-sqlite:///agentroute.db}" "$@"
