"""Schemathesis hooks: the credentials of each part of the Saoma API.

Loaded by `schemathesis run` (SCHEMATHESIS_HOOKS=schemathesis_hooks, with e2e/ on
PYTHONPATH; e2e/schemathesis_run.py does that). Every request is given, just before it
goes on the wire, the credentials its path needs:

  * merchant routes (/v1/payments, /v1/merchant/..., /v1/bills/..., /v1/events/...): an
    RFC 9421 HTTP message signature with the merchant key, `hmac-sha256`, covering
    "@method" "@target-uri" and, with a body, "content-digest" (RFC 9530), with `created`
    and a fresh `nonce` -- signed over the exact bytes and URL sent, so it verifies;
  * operator routes (/v1/admin/..., /metrics): `Authorization: Bearer <admin token>`;
  * wallet routes (/v1/wallet/...): `Authorization: Bearer <session token>`; a sign-out
    (`DELETE /v1/wallet/session`) is sent with one of the spare sessions the driver made,
    so the run's own session lives on (the fuzzed PINs soon lock the customer's PIN, so
    no new session could be made); for the same reason an operator's "sign out
    everywhere" aimed at the run's customer (whose id the stateful phase learns from the
    customer list) is sent to a spare customer instead.

Signing happens in the transport adapter (where the body is final), not in a
schemathesis auth provider (which sees the body before it is serialised).
Credentials come from SAOMA_ADMIN_TOKEN, SAOMA_KEY_ID, SAOMA_KEY_SECRET and
SAOMA_WALLET_SESSIONS (space-separated: the first is the run's, the rest spares),
SAOMA_CUSTOMER_ID and SAOMA_SPARE_CUSTOMER_ID.
Nothing here prints a credential.
"""

import base64
import hashlib
import hmac
import os
import secrets
import time
from urllib.parse import urlsplit

import requests.adapters

MERCHANT_PREFIXES = ("/v1/payments", "/v1/merchant/", "/v1/merchant?", "/v1/bills/", "/v1/events/")
OPERATOR_PREFIXES = ("/v1/admin/", "/metrics")


class Credentials:
    """The run's credentials."""

    def __init__(self):
        env = os.environ
        self.admin_token = env["SAOMA_ADMIN_TOKEN"]
        self.key_id = env["SAOMA_KEY_ID"]
        self.key_secret = env["SAOMA_KEY_SECRET"]
        sessions = env["SAOMA_WALLET_SESSIONS"].split()
        self.wallet_session = sessions[0]
        self.spare_sessions = sessions[1:]
        self.customer_id = env["SAOMA_CUSTOMER_ID"]
        self.spare_customer_id = env["SAOMA_SPARE_CUSTOMER_ID"]

    def session_to_end(self):
        """A spare session for a sign-out to end; a dead one when none is left (401)."""
        return self.spare_sessions.pop() if self.spare_sessions else "ws_ended"


def signature_headers(method, url, body, key_id, secret, created=None, nonce=None):
    """The headers of an RFC 9421 `hmac-sha256` signature (as crates/api/src/signing.rs)."""
    created = int(time.time()) if created is None else created
    nonce = secrets.token_hex(16) if nonce is None else nonce
    headers = {}
    components = '"@method" "@target-uri"'
    lines = ['"@method": %s' % method.upper(), '"@target-uri": %s' % url]
    if body:
        digest = "sha-256=:%s:" % base64.b64encode(hashlib.sha256(body).digest()).decode()
        headers["Content-Digest"] = digest
        components += ' "content-digest"'
        lines.append('"content-digest": %s' % digest)
    params = '(%s);created=%d;keyid="%s";alg="hmac-sha256";nonce="%s"' % (components, created, key_id, nonce)
    lines.append('"@signature-params": %s' % params)
    mac = hmac.new(secret.encode(), "\n".join(lines).encode(), hashlib.sha256).digest()
    headers["Signature-Input"] = "sig1=" + params
    headers["Signature"] = "sig1=:%s:" % base64.b64encode(mac).decode()
    return headers


def kind_of(path, method):
    if path.startswith(MERCHANT_PREFIXES):
        return "merchant"
    if path.startswith(OPERATOR_PREFIXES):
        return "operator"
    if path.startswith("/v1/wallet") and not (path == "/v1/wallet/session" and method == "POST"):
        return "wallet"
    return None


CREDENTIALS = None


def authorise(request):
    """Adds the credentials `request` (a prepared `requests` request) needs."""
    global CREDENTIALS
    if CREDENTIALS is None:
        CREDENTIALS = Credentials()
    path = urlsplit(request.url).path
    kind = kind_of(path, request.method)
    if kind == "merchant":
        body = request.body.encode() if isinstance(request.body, str) else (request.body or b"")
        for name in ("Authorization", "Signature", "Signature-Input", "Content-Digest"):
            request.headers.pop(name, None)
        request.headers.update(
            signature_headers(request.method, request.url, body, CREDENTIALS.key_id, CREDENTIALS.key_secret)
        )
    elif kind == "operator":
        own = "/v1/admin/customers/%s/sessions/revoke" % CREDENTIALS.customer_id
        if path == own:
            request.url = request.url.replace(CREDENTIALS.customer_id, CREDENTIALS.spare_customer_id, 1)
        request.headers["Authorization"] = "Bearer " + CREDENTIALS.admin_token
    elif kind == "wallet":
        ending = path == "/v1/wallet/session" and request.method == "DELETE"
        token = CREDENTIALS.session_to_end() if ending else CREDENTIALS.wallet_session
        request.headers["Authorization"] = "Bearer " + token


_send = requests.adapters.HTTPAdapter.send


def _signed_send(self, request, *args, **kwargs):
    authorise(request)
    return _send(self, request, *args, **kwargs)


requests.adapters.HTTPAdapter.send = _signed_send
