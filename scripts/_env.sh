# Shared set-up for scripts/demo.sh and scripts/test.sh: a project virtualenv built with uv.
# Sourced, not run. Idempotent: a second run only checks that everything is installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export LITELLM_LOCAL_MODEL_COST_MAP=True   # LiteLLM must never fetch its cost map at import
export HF_HUB_OFFLINE=1
PY="${PYTHON:-python3}"
if ! command -v uv >/dev/null 2>&1; then
  "$PY" -m pip install --quiet uv
fi
UV="$(command -v uv || echo "$PY -m uv")"
if [ ! -x .venv/bin/python ]; then
  $UV venv --quiet --python "$PY" .venv
fi
# PYTHONDONTWRITEBYTECODE may be set: compile bytecode at install time instead.
ar_install() { $UV pip install --quiet --python .venv/bin/python --compile-bytecode "$@"; }
