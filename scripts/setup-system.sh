#!/usr/bin/env bash
# System layer for codegen-eval's process sandbox. Idempotent.
#  - bubblewrap (namespaces: no network, read-only filesystem, private /tmp)
#  - the interpreter sandboxed programs run under: /opt/codegen-eval/sandbox-venv (numpy, pandas, scikit-learn),
#    root-owned and world-readable, because as root programs run under unprivileged uids that cannot read /root.
# As root it installs what is missing; as another user it only reports what is missing and goes on (runs record
# which isolation layers were active).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
if ! /usr/bin/python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  need+=(python3 python3-venv)
fi
if [ "$(id -u)" -ne 0 ]; then
  if [ ${#need[@]} -gt 0 ]; then
    echo "codegen-eval: missing system packages: ${need[*]} (install them for full sandbox isolation;" \
         "runs record which isolation layers were active)" >&2
  fi
  exit 0
fi
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "codegen-eval: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  else
    echo "codegen-eval: please install ${need[*]} with your package manager" >&2
    exit 0
  fi
fi
if ! /opt/codegen-eval/sandbox-venv/bin/python -c 'import numpy, pandas, sklearn' >/dev/null 2>&1; then
  sh "$here/setup-sandbox-python.sh"
fi
