#!/usr/bin/env bash
# Serve the Django reference, production style, on 127.0.0.1:PORT.
#   serve.sh PORT [WORKERS]
cd "$(dirname "$0")"
[ -x .venv/bin/gunicorn ] || ./setup.sh
exec .venv/bin/gunicorn backend.wsgi -b "127.0.0.1:${1:-8001}" -w "${2:-4}" --log-level warning
