#!/usr/bin/env bash
# Install agentroute with its dev and embeddings extras and run the whole test suite (PostgreSQL tests use the
# server at AGENTROUTE_TEST_PG, default postgresql://postgres@127.0.0.1:5432/test).
source "$(dirname "$0")/_env.sh"
ar_install -e ".[dev,embeddings]"
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure for this project" >&2
  exit 1
fi
exit "$status"
