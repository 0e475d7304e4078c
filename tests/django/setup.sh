#!/usr/bin/env bash
# Make the Django reference's venv (.venv here, from PyPI) and its SQLite
# database (db.sqlite3 here). Used by bench/run.py and the React example's
# `npm run e2e:django`; tests/django_import.rs makes its own databases.
set -e
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/pip install -q -r requirements.txt
.venv/bin/python manage.py migrate -v0
