"""Build a real Django database for tests/django_import.rs.

    python make_db.py DATABASE_URL custom|stock OUT.json

Runs the Django reference in this directory against DATABASE_URL
(sqlite://PATH or postgres://...), migrates it, creates users whose passwords Django hashes with
pbkdf2_sha256, argon2, bcrypt_sha256 and md5 (unsupported by latchkey), mints
SimpleJWT tokens for them, blacklists one refresh token, and writes what it
made (passwords included: they are test fixtures) to OUT.json.
"""

import json
import os
import sys
from datetime import datetime, timedelta, timezone

database_url, model, out_path = sys.argv[1:4]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["MAKE_DB_URL"] = database_url
os.environ["MAKE_DB_MODEL"] = model
os.environ["DJANGO_SETTINGS_MODULE"] = "settings"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.core.management import call_command  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken  # noqa: E402

# The stock user model's URLconf checks would import the custom model.
call_command("migrate", verbosity=0, skip_checks=True)

User = get_user_model()
stock = model == "stock"
JOINED = datetime(2024, 3, 1, 12, 0, 0, tzinfo=timezone.utc)

# (id, name, email, password, hasher, active). Ids have gaps, so keeping them
# is visible; names are `username` for the stock model.
PEOPLE = [
    (7, "Ada Lovelace", "ada@example.com", "Analytical-Engine-1843", "pbkdf2_sha256", True),
    (12, "Grace Hopper", "grace@Example.COM", "Cobol-Compiler-1959!", "argon2", True),
    (19, "Alan Turing", "alan@example.com", "Enigma-Bombe-1940", "bcrypt_sha256", True),
    (23, "Inactive Ian", "ian@example.com", "Dormant-Volcano-77", "pbkdf2_sha256", False),
    (31, "Old Olga", "olga@example.com", "Vintage-Hash-1999", "md5", True),
]
if not stock:
    # Django's names need not be unique; latchkey's are (case-insensitively).
    PEOPLE.append(
        (40, "ada lovelace", "ada.two@example.com", "Second-Ada-Namesake-2", "pbkdf2_sha256", True)
    )

users = []
for pk, name, email, password, hasher, active in PEOPLE:
    fields = {"username": name} if stock else {"name": name}
    user = User(pk=pk, email=email, is_active=active, **fields)
    user.password = make_password(password, hasher=hasher)
    user.save()
    users.append(
        {
            "id": pk,
            "name": name,
            "email": email,
            "password": password,
            "hasher": hasher,
            "active": active,
            "hash_prefix": user.password.split("$", 1)[0],
        }
    )
User.objects.filter(pk=7).update(date_joined=JOINED)

# A user without a usable password (e.g. created by an admin).
fields = {"username": "No Password"} if stock else {"name": "No Password"}
nopw = User(pk=50, email="nopw@example.com", **fields)
nopw.set_unusable_password()
nopw.save()

by_id = {u.pk: u for u in User.objects.all()}

ada_refresh = RefreshToken.for_user(by_id[7])
ada_access = ada_refresh.access_token
grace_refresh = RefreshToken.for_user(by_id[12])
grace_access = grace_refresh.access_token
# Logged out in Django: SimpleJWT blacklists the refresh token.
grace_refresh.blacklist()
grace_refresh_unused = RefreshToken.for_user(by_id[12])
alan_refresh = RefreshToken.for_user(by_id[19])
ian_access = RefreshToken.for_user(by_id[23]).access_token
expired = AccessToken.for_user(by_id[19])
expired.set_exp(lifetime=timedelta(seconds=-60))

with open(out_path, "w") as f:
    json.dump(
        {
            "secret_key": settings.SECRET_KEY,
            "user_table": User._meta.db_table,
            "joined_epoch": int(JOINED.timestamp()),
            "users": users,
            "tokens": {
                "ada_access": str(ada_access),
                "ada_refresh": str(ada_refresh),
                "grace_access": str(grace_access),
                "grace_refresh_blacklisted": str(grace_refresh),
                "grace_refresh": str(grace_refresh_unused),
                "alan_access": str(alan_refresh.access_token),
                "alan_refresh": str(alan_refresh),
                "inactive_access": str(ian_access),
                "expired_access": str(expired),
            },
        },
        f,
        indent=2,
    )
