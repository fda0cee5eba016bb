#!/usr/bin/env bash
# System layer for codegen-eval: bubblewrap (the process sandbox's isolation). Idempotent.
# As root it installs what is missing; as another user it only reports what is missing.
set -euo pipefail
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "codegen-eval: missing system packages: ${need[*]} (install them for full sandbox isolation;" \
       "runs record which isolation layers were active)" >&2
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  echo "codegen-eval: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
else
  echo "codegen-eval: please install ${need[*]} with your package manager" >&2
fi
