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
# torch==2.13.0 (embeddings extra) must come from a CPU wheel: a local wheel directory is
# searched first when there is one (PIP_FIND_LINKS or /opt/wheels), else PyPI's CPU index.
FIND_LINKS=()
for d in ${PIP_FIND_LINKS:-} /opt/wheels; do
  [ -d "$d" ] && FIND_LINKS+=(--find-links "$d")
done
if [ ${#FIND_LINKS[@]} -eq 0 ]; then
  FIND_LINKS=(--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
fi
ar_install() {
  $UV pip install --quiet --python .venv/bin/python --compile-bytecode "${FIND_LINKS[@]}" "$@"
}
