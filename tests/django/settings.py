"""Django settings for tests/django_import.rs: the reference's own settings
(backend/settings.py), with the database, the password hashers and (for Django's stock user) the user
model taken from the environment that make_db.py sets."""

import os
from urllib.parse import urlparse

from backend.settings import *  # noqa: F401,F403  (the reference's settings)
from backend.settings import INSTALLED_APPS

_url = os.environ["MAKE_DB_URL"]
if _url.startswith("sqlite://"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _url[len("sqlite://"):],
        }
    }
else:
    _u = urlparse(_url)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _u.path.lstrip("/"),
            "USER": _u.username or "postgres",
            "PASSWORD": _u.password or "",
            "HOST": _u.hostname or "127.0.0.1",
            "PORT": str(_u.port or 5432),
        }
    }

# Every hasher the import must handle, and one it reports as unsupported.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.MD5PasswordHasher",
]

if os.environ.get("MAKE_DB_MODEL") == "stock":
    # Django's stock user (`auth_user`, `username`) instead of the custom one.
    INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "accounts"]
    AUTH_USER_MODEL = "auth.User"
