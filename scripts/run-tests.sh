#!/usr/bin/env bash
# `make test`: set up what the tests need that can be set up here, run them, and say what could not be.
#   scripts/run-tests.sh PYTHON [PYTEST ARGS...]
# As root: headless Chromium (the report's browser test) and the container engine (podman, its Docker API socket
# and the sandbox image), so that no test skips for want of them; container tests then fail rather than skip.
# As another user nothing is installed, and one line at the end says what was skipped and why.
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python="$1"; shift
skipped=()
if [ "$(id -u)" -eq 0 ]; then
  bash "$here/scripts/setup-browser.sh" || exit $?
  PYTHON="$python" bash "$here/scripts/setup-container-engine.sh" || exit $?
  export CODEGEN_EVAL_REQUIRE_CONTAINER=1
else
  skipped+=("the container sandbox's tests (rootful podman needs root: run 'sudo make container', then set CODEGEN_EVAL_REQUIRE_CONTAINER=1)")
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
    || skipped+=("the report's browser test (no chromium)")
  command -v bwrap >/dev/null 2>&1 || skipped+=("bubblewrap isolation (not installed)")
fi
cd "$here"
# The Ray executor's tests skip without ray, unless CODEGEN_EVAL_REQUIRE_RAY=1 (`make test` sets it: setup installs it).
"$python" -c "import ray" >/dev/null 2>&1 || [ -n "${CODEGEN_EVAL_REQUIRE_RAY:-}" ] \
  || skipped+=("the Ray executor's tests (no ray: pip install 'codegen-eval[ray]')")
"$python" -m pytest -q "${@:-tests}"
rc=$?
if [ ${#skipped[@]} -gt 0 ]; then
  (IFS=';'; echo "make test: not root (uid $(id -u)), so nothing was installed; skipped:${skipped[*]/#/ }")
fi
exit $rc
