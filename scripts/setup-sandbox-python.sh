#!/bin/sh
# Create the interpreter that sandboxed programs run under: /opt/codegen-eval/sandbox-venv, built from
# Debian's /usr/bin/python3 with the libraries MTPB programs import (numpy, pandas, scikit-learn).
#
# Why a separate venv: as root the process sandbox runs programs under unprivileged uids, and those cannot
# execute a Python under /root (mode 700, where pyenv and most dev venvs live). Everything here is
# world-readable and root-owned, so a program can import it but never modify it.
#
# Usage (as root):  sh scripts/setup-sandbox-python.sh [VENV_DIR]
# Env: SANDBOX_PYTHON_BASE (default /usr/bin/python3), SANDBOX_PIP_PACKAGES (default "numpy pandas scikit-learn").
set -eu

VENV="${1:-/opt/codegen-eval/sandbox-venv}"
BASE="${SANDBOX_PYTHON_BASE:-/usr/bin/python3}"
PACKAGES="${SANDBOX_PIP_PACKAGES:-numpy pandas scikit-learn}"

if [ ! -x "$BASE" ]; then
    echo "setup-sandbox-python: $BASE not found (apt-get install python3)" >&2
    exit 1
fi

# Debian ships venv/ensurepip separately.
if ! "$BASE" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup-sandbox-python: $BASE lacks venv/ensurepip; run as root or apt-get install python3-venv" >&2
        exit 1
    fi
    apt-get install -y --no-install-recommends python3-venv
fi

umask 022
mkdir -p "$(dirname "$VENV")"
if [ ! -x "$VENV/bin/python" ]; then
    "$BASE" -m venv "$VENV"
fi
# shellcheck disable=SC2086  # PACKAGES is a word list on purpose
"$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --upgrade $PACKAGES
chmod -R a+rX "$VENV"
"$VENV/bin/python" -c 'import numpy, pandas, sklearn; print("sandbox python ready:", numpy.__version__, pandas.__version__, sklearn.__version__)'
