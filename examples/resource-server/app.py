"""An API of its own that trusts latchkey's access tokens.

It verifies them offline with a standard JWT library (PyJWT) against
latchkey's JWKS: no request to latchkey per call, and no secret that could
mint tokens. One route shows the limit of that, and the cure: /transfers
also asks latchkey whether the token is still live.

    LATCHKEY_URL=http://127.0.0.1:8000 LATCHKEY_JWT_ALGORITHM=EdDSA \
    LATCHKEY_JWT_AUDIENCE=orders-api python app.py
"""

import json
import os
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

LATCHKEY = os.environ.get("LATCHKEY_URL", "http://127.0.0.1:8000").rstrip("/")
# Pinned: never let the token's header choose the algorithm.
ALGORITHMS = [os.environ.get("LATCHKEY_JWT_ALGORITHM", "EdDSA")]
ISSUER = os.environ.get("LATCHKEY_JWT_ISSUER") or None
AUDIENCE = os.environ.get("LATCHKEY_JWT_AUDIENCE") or None
PORT = int(os.environ.get("PORT", "8100"))

# Caches the keys for 5 minutes (latchkey's Cache-Control) and fetches the
# JWKS again when a token names a kid it has not seen (after a rotation).
JWKS = jwt.PyJWKClient(f"{LATCHKEY}/.well-known/jwks.json", cache_keys=True, lifespan=300, timeout=5)


class Refused(Exception):
    pass


def verify_offline(token):
    """The claims of a valid, unexpired latchkey access token."""
    try:
        key = JWKS.get_signing_key_from_jwt(token)
        required = ["exp", "iat", "jti", "user_id"] + (["iss"] if ISSUER else []) + (["aud"] if AUDIENCE else [])
        claims = jwt.decode(
            token,
            key.key,
            algorithms=ALGORITHMS,
            issuer=ISSUER,
            audience=AUDIENCE,
            leeway=5,
            options={"require": required},
        )
    except (jwt.PyJWTError, ValueError) as e:
        raise Refused(str(e)) from None
    if claims.get("token_type") != "access":
        raise Refused("not an access token")
    return claims


def verify_online(token):
    """Ask latchkey whether the token's session is still live (a logout,
    a password change or a reuse detection ends it before `exp`)."""
    with urllib.request.urlopen(f"{LATCHKEY}/auth/csrf/", timeout=5) as r:
        csrf = json.load(r)["csrfToken"]
    request = urllib.request.Request(
        f"{LATCHKEY}/auth/token/verify/",
        data=json.dumps({"token": token}).encode(),
        headers={"Content-Type": "application/json", "X-CSRFToken": csrf},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5):
            return
    except urllib.error.HTTPError as e:
        if e.code == 401:
            raise Refused("revoked") from None
        raise


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer error="invalid_token"')
        self.end_headers()
        self.wfile.write(data)

    def bearer(self):
        words = self.headers.get("Authorization", "").split()
        if len(words) != 2 or words[0] != "Bearer":
            raise Refused("no bearer token")
        return words[1]

    def route(self, online):
        try:
            token = self.bearer()
            claims = verify_offline(token)
            if online:
                verify_online(token)
        except Refused as e:
            return self.answer(401, {"detail": str(e)})
        self.answer(200, {"user_id": claims["user_id"], "kid": jwt.get_unverified_header(token).get("kid")})

    def do_GET(self):
        if self.path == "/healthz":
            return self.answer(200, {"status": "ok"})
        if self.path == "/orders":
            return self.route(online=False)
        self.answer(404, {"detail": "Not found."})

    def do_POST(self):
        if self.path == "/transfers":
            return self.route(online=True)
        self.answer(404, {"detail": "Not found."})

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print(f"resource server on http://127.0.0.1:{PORT}", flush=True)
    server.serve_forever()
