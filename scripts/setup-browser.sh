#!/usr/bin/env bash
# Headless Chromium for the HTML report's browser test (tests/e2e/test_report_browser.py). Idempotent.
# CI runs it as root; elsewhere it only says what is missing (the test then skips with the reason).
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "codegen-eval: chromium is not installed; the report's browser test will be skipped" \
       "(install: apt-get install -y --no-install-recommends chromium)" >&2
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  echo "codegen-eval: installing chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
else
  echo "codegen-eval: please install chromium with your package manager" >&2
fi
