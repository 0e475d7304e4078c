"""The Django reference's settings, unchanged but for what the e2e run sets.

latchkey's run sets the same three things through its environment: a fresh
database file, short-lived access tokens (so the refresh path runs for real)
and the app's origins in the CORS list (the app is served on a free port).
"""

import os
from datetime import timedelta

from backend.settings import *  # noqa: F401,F403
from backend.settings import CORS_ALLOWED_ORIGINS, DATABASES, SIMPLE_JWT

DATABASES = {"default": {**DATABASES["default"], "NAME": os.environ["E2E_DJANGO_DB"]}}
SIMPLE_JWT = {**SIMPLE_JWT, "ACCESS_TOKEN_LIFETIME": timedelta(seconds=int(os.environ["E2E_ACCESS_SECONDS"]))}
CORS_ALLOWED_ORIGINS = [*CORS_ALLOWED_ORIGINS, *os.environ["E2E_APP_ORIGINS"].split(",")]
CSRF_TRUSTED_ORIGINS = CORS_ALLOWED_ORIGINS
