#!/usr/bin/env bash
# Make the SMTP test server's venv (default tests/smtp/.venv, or $1) from
# PyPI with the pinned requirements. The Rust tests make their own under the
# target directory when neither this one nor LATCHKEY_TEST_SMTP_PYTHON is
# there; the React example's e2e run calls this when it needs one.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/.venv}"
if "$venv/bin/python" -c 'import aiosmtpd' >/dev/null 2>&1; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$here/requirements.txt"
"$venv/bin/python" -c 'import aiosmtpd'
