"""Schema-driven testing of the whole HTTP API with schemathesis, against `saoma serve`.

Starts `saoma serve` on a fresh SQLite database (rate limits and velocity rules off, so
the generated traffic is not throttled), makes its fixtures through the API (an approved
merchant with an owner key, a customer with money and a PIN), then runs
`schemathesis run` over every operation of the served /openapi.json with the credentials
of e2e/schemathesis_hooks.py. Fails on any 5xx, on any answer the document does not
describe (its body, its status, its content type or its headers:
`not_a_server_error`, `response_schema_conformance`, `status_code_conformance`,
`content_type_conformance`, `response_headers_conformance`), and on a server that died
or panicked. The stateful phase follows the document's links (create a payment, then
query, cancel and refund it, fetch its receipt).

Run: python3 e2e/schemathesis_run.py   (needs `pip install schemathesis==4.32.5` and a
built `saoma`: SAOMA_BIN, default target/debug/saoma). SAOMA_SCHEMATHESIS_EXAMPLES (default
25) and SAOMA_SCHEMATHESIS_SECONDS (default 240) bound the run; SAOMA_SCHEMATHESIS_SEED
makes it repeatable.
"""

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SAOMA_BIN", os.path.join(ROOT, "target", "debug", "saoma"))
EXAMPLES = os.environ.get("SAOMA_SCHEMATHESIS_EXAMPLES", "25")
SECONDS = os.environ.get("SAOMA_SCHEMATHESIS_SECONDS", "240")
SEED = os.environ.get("SAOMA_SCHEMATHESIS_SEED")
PHONE, PIN = "13900000001", "123456"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, method, path, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def wait_until_up(url, server, log):
    deadline = time.time() + 120
    while time.time() < deadline:
        if server.poll() is not None:
            sys.exit("saoma serve stopped at start:\n" + open(log).read())
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.3)
    sys.exit("saoma serve did not come up")


def fixtures(url, admin_token):
    merchant = call(url, "POST", "/v1/admin/merchants", {
        "name": "Schema Cafe", "mcc": "5814", "city": "Shanghai", "country": "CN",
        "currency": "CNY", "fee_bps": 60}, admin_token)
    call(url, "POST", "/v1/admin/merchants/%s/approve" % merchant["id"], {}, admin_token)
    key = call(url, "POST", "/v1/admin/merchants/%s/keys" % merchant["id"], {"role": "merchant"}, admin_token)
    customer = call(url, "POST", "/v1/admin/customers", {"phone": PHONE, "name": "Schema Customer", "pin": PIN},
                    admin_token)
    call(url, "POST", "/v1/admin/customers/%s/topups" % customer["id"],
         {"amount": 10_000_000, "currency": "CNY", "reference": "schemathesis-seed"}, admin_token)
    spare = call(url, "POST", "/v1/admin/customers", {"phone": "13900000002", "name": "Spare", "pin": PIN},
                 admin_token)
    sessions = [call(url, "POST", "/v1/wallet/session", {"phone": PHONE, "pin": PIN})["token"] for _ in range(6)]
    return key, sessions, customer["id"], spare["id"]


def main():
    work = tempfile.mkdtemp(prefix="saoma-schemathesis-")
    url = "http://127.0.0.1:%d" % free_port()
    admin_token = "adm_" + secrets.token_hex(16)
    log = os.path.join(work, "server.log")
    env = dict(os.environ, SAOMA_ADMIN_TOKEN=admin_token, SAOMA_RATE_LIMIT_IP="0", SAOMA_RATE_LIMIT_KEY="0",
               SAOMA_RISK_VELOCITY="off", RUST_LOG="warn")
    with open(log, "w") as out:
        server = subprocess.Popen(
            [BIN, "serve", "--listen", url.removeprefix("http://"),
             "--database", "sqlite://" + os.path.join(work, "saoma.db")],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until_up(url, server, log)
        key, sessions, customer_id, spare_id = fixtures(url, admin_token)
        hooks_env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(__file__)),
                         SCHEMATHESIS_HOOKS="schemathesis_hooks", SAOMA_ADMIN_TOKEN=admin_token,
                         SAOMA_KEY_ID=key["key_id"], SAOMA_KEY_SECRET=key["secret"],
                         SAOMA_WALLET_SESSIONS=" ".join(sessions), SAOMA_CUSTOMER_ID=customer_id,
                         SAOMA_SPARE_CUSTOMER_ID=spare_id)
        command = [
            sys.executable, "-m", "schemathesis.cli", "run", url + "/openapi.json",
            "--url", url,
            "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance",
            "--max-examples", EXAMPLES,
            "--max-time", SECONDS,
            "--request-timeout", "40",
            "--workers", "1",
            # A live feed never ends: it is tested in crates/server/tests.
            "--exclude-path", "/v1/events/stream",
            "--no-color",
        ]
        if SEED:
            command += ["--seed", SEED]
        # In the scratch folder: schemathesis keeps a cache of its own where it runs.
        result = subprocess.run(command, env=hooks_env, cwd=work)
        try:
            call(url, "GET", "/v1/wallet", token=sessions[0])
            print("The run's wallet session lived to the end.")
        except urllib.error.HTTPError as e:
            print("The run's wallet session ended during the run (%d): later wallet cases saw 401." % e.code)
        alive = server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=30)
    server_log = open(log).read()
    panicked = "panicked" in server_log
    if panicked or not alive:
        print(server_log[-5000:])
    failed = int(result.returncode != 0) + int(panicked) + int(not alive)
    print("schemathesis: %d passed, %d failed" % (3 - failed, failed))
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
