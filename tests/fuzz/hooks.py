"""Schemathesis hooks for scripts/fuzz.sh.

- Signs every generated callback body: X-Signature = hex HMAC-SHA256 of the exact bytes sent.
- Signs the gateways' own callbacks with the credentials scripts/fuzz.sh gave the app: Duitku's
  `signature` field, Midtrans's `signature_key`, Tripay's X-Callback-Signature (Xendit's token
  header comes from schemathesis.toml), and steers some of them to the run's deposits (billed
  by the Central PG, so the gateway's notice must be refused with GATEWAY_MISMATCH).
- Steers some callbacks to deposits the run created, so PAID and FAILED reach real records,
  and gives `duitkuData.merchantOrderId` the value of `orderId` when both are sent.
- Makes the cases satisfy the rules the document states only in words: a positive status
  lookup names exactly one of `depositId` and `reference`, a positive console list asks for
  `from` no later than `to`, and every Duitku notice carries the merchant code the app was
  given. Other negative cases are left as generated.
- Check `nothing_stored_by_a_refused_request`: a 4xx answer leaves both store files as they
  were (requests run one at a time: the fuzz step uses one worker).
"""

import hashlib
import hmac
import json
import os
import atexit
import collections
import copy
import random
import sqlite3

import schemathesis

SECRET = os.environ["FUZZ_SECRET"].encode()
STORES = [p for p in os.environ["FUZZ_STORES"].split(os.pathsep) if p]
CALLBACK = "/internal/payment-callback"
# The operations that read the console list's query (`from` no later than `to`).
LIST_QUERIES = {"/admin/deposits", "/admin/deposits.csv", "/admin/action/bulk-resend"}
DUITKU_CODE = os.environ["FUZZ_DUITKU_MERCHANT_CODE"]
DUITKU_KEY = os.environ["FUZZ_DUITKU_API_KEY"].encode()
MIDTRANS_KEY = os.environ["FUZZ_MIDTRANS_SERVER_KEY"]
TRIPAY_KEY = os.environ["FUZZ_TRIPAY_PRIVATE_KEY"].encode()
# The field of each gateway's notice that carries the order id (our depositId).
ORDER_FIELD = {
    "/callback/duitku": "merchantOrderId",
    "/callback/midtrans": "order_id",
    "/callback/xendit": "external_id",
    "/callback/tripay": "merchant_ref",
}
# 409s that report work in progress may record what they saw (a create's hold on the id, a
# later look at a stalled credit): that is how a stalled party is taken over.
IN_PROGRESS = {"CREATE_IN_PROGRESS", "CREDIT_IN_PROGRESS", "DEPOSIT_EXPIRED"}

created = {}  # depositId -> (reference, amount), from the run's successful creates
before = {}  # id(case) -> store snapshot taken just before the call
steer = random.Random(16)
answers = collections.Counter()  # (method, path, status, error code) -> responses


def write_summary():
    path = os.environ.get("FUZZ_SUMMARY")
    if not path:
        return
    with open(path, "w") as out:
        rows = sum(len(r) for _, r in snapshot() if r is not None)
        out.write(f"{sum(answers.values())} requests; {rows} store rows at the end\n")
        for (method, route, status, code), n in sorted(answers.items()):
            out.write(f"{n:6} {method:7} {route:28} {status} {code or ''}\n")


atexit.register(write_summary)


def snapshot():
    rows = []
    for path in STORES:
        if not os.path.exists(path):
            rows.append((path, None))
            continue
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows.append((path, db.execute("SELECT store, key, value FROM spin_key_value ORDER BY store, key").fetchall()))
        finally:
            db.close()
    return rows


def wire_bytes(body):
    """The bytes schemathesis' requests transport sends for a JSON body."""
    if isinstance(body, bytes):
        return body
    if body is None:
        return b"null"
    return json.dumps(body, allow_nan=False).encode("utf-8")


def as_signed_text(value):
    """A field as the app reads it for a signature (absent is empty), or None if unsure."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def is_positive(case):
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


def one_lookup(case):
    """A positive status lookup names exactly one of depositId and reference."""
    query = dict(case.query or {})
    given = [name for name in ("depositId", "reference") if name in query]
    if len(given) == 2:
        # Keep depositId: a link from a create fills it in.
        del query["reference"]
    elif not given:
        query["depositId"] = steer.choice(sorted(created)) if created else "D-1"
    case.query = query


def ordered_range(case):
    """A positive console list asks for `from` no later than `to`."""
    query = dict(case.query or {})
    low, high = query.get("from"), query.get("to")
    try:
        if low and high and int(low) > int(high):
            query["from"], query["to"] = high, low
    except ValueError:
        pass
    case.query = query


def sign_gateway_callback(case):
    path = case.operation.path
    body = case.body = copy.deepcopy(case.body)
    if isinstance(body, dict) and created and steer.random() < 0.3:
        body[ORDER_FIELD[path]] = steer.choice(sorted(created))
    if path == "/callback/duitku" and isinstance(body, dict):
        # Always the app's merchant code: schemathesis also counts as schema-valid some cases
        # it generated in a negative phase, and OpenAPI cannot say which code is the app's
        # (the unit tests cover another merchant's notice).
        body["merchantCode"] = DUITKU_CODE
        parts = [as_signed_text(body.get(k)) for k in ("merchantCode", "amount", "merchantOrderId")]
        if None not in parts:
            body["signature"] = hmac.new(DUITKU_KEY, "".join(parts).encode(), hashlib.sha256).hexdigest()
    elif path == "/callback/midtrans" and isinstance(body, dict):
        parts = [as_signed_text(body.get(k)) for k in ("order_id", "status_code", "gross_amount")]
        if None not in parts:
            body["signature_key"] = hashlib.sha512(("".join(parts) + MIDTRANS_KEY).encode()).hexdigest()
    elif path == "/callback/tripay" and "X-Callback-Signature" in (case.headers or {}):
        # Only where schemathesis put the placeholder: a case testing the missing header
        # keeps it missing.
        try:
            raw = wire_bytes(body)
        except (TypeError, ValueError):
            raw = None
        if raw is not None:
            case.headers = dict(case.headers or {})
            case.headers["X-Callback-Signature"] = hmac.new(TRIPAY_KEY, raw, hashlib.sha256).hexdigest()


@schemathesis.hook
def before_call(context, case, kwargs):
    operation = case.operation
    if operation.path == "/deposit/status" and is_positive(case):
        one_lookup(case)
    if operation.path in LIST_QUERIES and is_positive(case):
        ordered_range(case)
    if operation.path in ORDER_FIELD and operation.method.upper() == "POST":
        sign_gateway_callback(case)
    if operation.path == CALLBACK and operation.method.upper() == "POST":
        # Generated cases may share nested objects: edit a copy.
        body = case.body = copy.deepcopy(case.body)
        if isinstance(body, dict) and created and steer.random() < 0.5:
            deposit_id, (reference, amount) = steer.choice(sorted(created.items()))
            body["orderId"] = deposit_id
            body["reference"] = reference
            data = body.get("duitkuData")
            if not isinstance(data, dict):
                data = body["duitkuData"] = {}
            data["merchantOrderId"] = deposit_id
            data["amount"] = str(amount)
            if body.get("status") == "PAID":
                body["resultCode"] = "00"
        # JSON Schema cannot say "merchantOrderId equals orderId" (the unit tests cover it).
        data = body.get("duitkuData") if isinstance(body, dict) else None
        if isinstance(data, dict) and body.get("orderId") not in (None, "") \
                and data.get("merchantOrderId") not in (None, ""):
            data["merchantOrderId"] = body["orderId"]
        try:
            raw = wire_bytes(case.body)
        except (TypeError, ValueError):
            raw = None
        if raw is not None:
            case.headers = dict(case.headers or {})
            case.headers["X-Signature"] = hmac.new(SECRET, raw, hashlib.sha256).hexdigest()
    before[id(case)] = snapshot()


@schemathesis.hook
def after_call(context, case, response):
    operation = case.operation
    code = None
    if response.status_code >= 400:
        try:
            code = json.loads(response.content).get("error")
        except (ValueError, AttributeError):
            pass
    answers[(response.request.method, operation.path, response.status_code, code)] += 1
    if operation.path == "/deposit/create" and response.status_code == 200 and isinstance(case.body, dict):
        try:
            answer = json.loads(response.content)
            created[answer["depositId"]] = (answer["reference"], case.body["amount"])
        except (ValueError, KeyError, TypeError):
            pass


@schemathesis.check
def nothing_stored_by_a_refused_request(ctx, response, case):
    """A refused request (4xx) changes nothing in the store."""
    taken = before.pop(id(case), None)
    if taken is None or not 400 <= response.status_code < 500:
        return None
    code = None
    try:
        code = json.loads(response.content).get("error")
    except (ValueError, AttributeError):
        pass
    if code in IN_PROGRESS:
        return None
    if snapshot() != taken:
        raise AssertionError(
            f"{case.operation.method.upper()} {case.operation.path} answered "
            f"{response.status_code} {code} and changed the store"
        )
    return None
