"""The Python client openapi-python-client generates from openapi.json, used against the app.

scripts/clients.sh generates the package `topup_client` into the directory given as
`--client-dir`, then runs this file. It starts the mock Central PG and bot (`topup-mocks`) and
the real components on `topup-host serve` with SQLite files in a temporary directory, each on
a port of its own choosing (read back from the line it prints once it listens), and walks a
deposit through the generated functions only: health, create, status (PENDING), the Central
PG's PAID callback signed as the README says (X-Signature = hex HMAC-SHA256 of the raw body
with the shared secret), status (PAID, credited once), a duplicate callback, a forged one, the
sweep and a manual retry, and the error model of a refused call. Exits non-zero on the first
difference.
"""

import argparse
import hashlib
import hmac
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--client-dir", required=True, help="directory holding the generated topup_client package")
parser.add_argument("--host", required=True, help="the topup-host binary")
parser.add_argument("--mocks", required=True, help="the topup-mocks binary")
parser.add_argument("--manifest", required=True, help="spin.toml")
args = parser.parse_args()
sys.path.insert(0, args.client_dir)

import httpx  # noqa: E402  (installed with the generator)
from topup_client import AuthenticatedClient, Client  # noqa: E402
from topup_client.api.deposits import create_deposit, deposit_status  # noqa: E402
from topup_client.api.gateway import payment_callback  # noqa: E402
from topup_client.api.operations import credit_retry, retry_credit  # noqa: E402
from topup_client.api.service import health, openapi  # noqa: E402
from topup_client.models import (  # noqa: E402
    CreateDeposit,
    Created,
    DepositView,
    DepositViewStatus,
    DuitkuData,
    Error,
    Health,
    ManualRetry,
    PaymentCallback,
    PaymentCallbackStatus,
    SweepReport,
)

CALLBACK = "/internal/payment-callback"


def start(command, env, ready, log):
    """Starts `command` and returns it once its stdout printed a line starting with `ready`
    (it prints that line after binding its port), with that line."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True
    )
    for line in process.stdout:
        if line.startswith(ready):
            # Keep reading, so that the process never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            return process, line.strip()
    process.wait()
    sys.exit(f"client test: {command[0]} exited ({process.returncode}) before printing {ready!r}")


def check(condition, what):
    if not condition:
        sys.exit(f"client test: {what}")
    print(f"ok   {what}")


def main():
    secret = secrets.token_hex(32)
    work = Path(tempfile.mkdtemp(prefix="topup-client-"))
    (work / "runtime-config.toml").write_text(
        '[key_value_store.default]\ntype = "spin"\npath = "default.db"\n\n'
        '[key_value_store.claims]\ntype = "spin"\npath = "claims.db"\n'
    )
    env = {"PATH": os.environ.get("PATH", ""), "SPIN_VARIABLE_SHARED_SECRET": secret}
    processes = []
    try:
        with open(work / "mocks.log", "w") as log:
            mocks, line = start(
                [args.mocks, "--pg", "127.0.0.1:0", "--bot", "127.0.0.1:0"], env, "Mock Central PG on ", log
            )
        processes.append(mocks)
        # "Mock Central PG on http://127.0.0.1:P and mock bot on http://127.0.0.1:Q"
        words = line.split()
        pg, bot = words[4], words[-1]
        env.update(SPIN_VARIABLE_CENTRAL_PG_BASE_URL=pg, SPIN_VARIABLE_BOT_BACKEND_URL=bot)
        with open(work / "app.log", "w") as log:
            app, line = start(
                [
                    args.host, "serve", "--manifest", args.manifest,
                    "--runtime-config-file", str(work / "runtime-config.toml"), "--listen", "127.0.0.1:0",
                ],
                env,
                "Serving http://",
                log,
            )
        processes.append(app)
        url = line.split()[-1]
        flow(url, secret)
    except SystemExit:
        for name in ("app.log", "mocks.log"):
            path = work / name
            if path.exists():
                print(f"--- {name} (last 20 lines)", file=sys.stderr)
                print("".join(path.read_text().splitlines(True)[-20:]), file=sys.stderr)
        raise
    finally:
        for process in processes:
            process.terminate()
            process.wait()
    shutil.rmtree(work)


def flow(url, secret):
    def sign(request: httpx.Request):
        # The Central PG's signature covers the exact bytes sent, so it is computed here, on
        # the request the generated code built.
        if request.url.path == CALLBACK:
            request.headers["X-Signature"] = hmac.new(secret.encode(), request.content, hashlib.sha256).hexdigest()

    public = Client(base_url=url)
    client = AuthenticatedClient(base_url=url, token=secret, httpx_args={"event_hooks": {"request": [sign]}})

    alive = health.sync_detailed(client=public)
    check(alive.status_code == 200 and isinstance(alive.parsed, Health) and alive.parsed.ok, "health answers 200 ok")
    document = openapi.sync_detailed(client=public)
    check(document.status_code == 200 and document.parsed.openapi == "3.1.0", "GET /openapi.json is the document")

    deposit_id = "client-" + secrets.token_hex(4)
    created = create_deposit.sync(client=client, body=CreateDeposit(user_id="tg:42", amount=50000, deposit_id=deposit_id))
    check(isinstance(created, Created) and created.deposit_id == deposit_id and created.reference, "create returns the invoice")

    view = deposit_status.sync(client=client, deposit_id=deposit_id)
    check(
        isinstance(view, DepositView) and view.status == DepositViewStatus.PENDING and not view.credited,
        "status: PENDING, not credited",
    )

    paid = PaymentCallback(
        order_id=deposit_id,
        reference=created.reference,
        status=PaymentCallbackStatus.PAID,
        result_code="00",
        duitku_data=DuitkuData(merchant_order_id=deposit_id, amount="50000", payment_method="VC"),
    )
    answer = payment_callback.sync_detailed(client=client, body=paid)
    check(answer.status_code == 200 and answer.parsed == "OK", "signed PAID callback answered 200 OK")

    view = deposit_status.sync(client=client, deposit_id=deposit_id)
    check(
        isinstance(view, DepositView)
        and view.status == DepositViewStatus.PAID
        and view.credited
        and view.credit_attempts == 1
        and view.amount == 50000
        and view.user_id == "tg:42",
        "status: PAID, credited by one delivery",
    )
    by_reference = deposit_status.sync(client=client, reference=created.reference)
    check(isinstance(by_reference, DepositView) and by_reference.deposit_id == deposit_id, "status by reference")

    again = payment_callback.sync_detailed(client=client, body=paid)
    view = deposit_status.sync(client=client, deposit_id=deposit_id)
    check(again.status_code == 200 and view.credit_attempts == 1, "a duplicate callback credits nothing")

    forged = Client(base_url=url, headers={"Authorization": f"Bearer {secret}", "X-Signature": "0" * 64})
    refused = payment_callback.sync_detailed(client=forged, body=paid)
    check(
        refused.status_code == 401 and isinstance(refused.parsed, Error) and refused.parsed.error == "INVALID_SIGNATURE",
        "a wrong signature is 401 INVALID_SIGNATURE",
    )

    sweep = credit_retry.sync(client=client)
    check(isinstance(sweep, SweepReport) and sweep.ok and sweep.remaining == 0, "the sweep reports nothing owed")
    retry = retry_credit.sync(client=client, deposit_id=deposit_id)
    check(isinstance(retry, ManualRetry) and retry.already_credited, "a manual retry of a credited deposit sends nothing")

    missing = deposit_status.sync_detailed(client=client, deposit_id="no-such-deposit")
    check(
        missing.status_code == 404 and isinstance(missing.parsed, Error) and missing.parsed.error == "DEPOSIT_NOT_FOUND",
        "an unknown deposit is 404 DEPOSIT_NOT_FOUND",
    )


main()
