"""Credit receiver for bot-topup-backend: FastAPI takes the app's signed credit call, SQLite
applies each Idempotency-Key once, aiogram tells the user on Telegram."""

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import socket
import sqlite3
import time

import uvicorn
from aiogram import Bot
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import JSONResponse

SECRET = os.environ["SHARED_SECRET"]
# While the secret rotates, credits signed with the previous one are accepted too.
SECRETS = [s for s in (SECRET, os.environ.get("SHARED_SECRET_PREVIOUS")) if s]
# The bot this receiver serves: its credits carry "botId" (none for `default`).
BOT_ID = os.environ.get("BOT_ID") or "default"
DB_PATH = os.environ.get("DB_PATH", "receiver.db")
CREDIT_PATH = os.environ.get("CREDIT_PATH", "/internal/deposit-callback")
MAX_BODY = 64 * 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS balances (user_id TEXT PRIMARY KEY, balance INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS credits (
  idempotency_key TEXT PRIMARY KEY, user_id TEXT NOT NULL, amount INTEGER NOT NULL,
  reference TEXT, credited_at INTEGER NOT NULL);
"""


class LogNotifier:
    """Prints the message instead of sending it (tests, dry runs)."""

    async def notify(self, user_id: str, amount: int, deposit_id: str) -> None:
        line = json.dumps({"userId": user_id, "amount": amount, "depositId": deposit_id})
        print(f"notify {line}", flush=True)


class TelegramNotifier:
    """Sends the user a Telegram message; `userId` is the chat id, optionally `tg:`-prefixed."""

    def __init__(self, token: str):
        self.bot = Bot(token)

    async def notify(self, user_id: str, amount: int, deposit_id: str) -> None:
        chat_id = user_id.removeprefix("tg:")
        await self.bot.send_message(chat_id, f"Top-up of Rp {amount:,} received ({deposit_id}).")


def make_notifier():
    kind = os.environ.get("NOTIFIER", "telegram")
    if kind == "log":
        return LogNotifier()
    return TelegramNotifier(os.environ["TELEGRAM_BOT_TOKEN"])


def connect() -> sqlite3.Connection:
    # autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE.
    return sqlite3.connect(DB_PATH, isolation_level=None, timeout=5)


with contextlib.closing(connect()) as schema_db:
    schema_db.executescript(SCHEMA)


def apply_credit(key: str, user_id: str, amount: int, reference: str) -> bool:
    """Records the key and adds to the balance in one transaction; False if the key was seen."""
    db = connect()
    try:
        db.execute("BEGIN IMMEDIATE")
        inserted = db.execute(
            "INSERT INTO credits VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (key, user_id, amount, reference, int(time.time() * 1000)),
        ).rowcount
        if inserted:
            db.execute(
                "INSERT INTO balances VALUES (?, ?)"
                " ON CONFLICT(user_id) DO UPDATE SET balance = balance + excluded.balance",
                (user_id, amount),
            )
        db.execute("COMMIT")
        return bool(inserted)
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        db.close()


def signed_with(secret: str, raw_body: bytes, signature: str, authorization: str) -> bool:
    """Checks the bearer token and the HMAC of the bytes received, in constant time."""
    expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    signature_ok = hmac.compare_digest(signature.encode(), expected.encode())
    bearer_ok = hmac.compare_digest(authorization.encode(), f"Bearer {secret}".encode())
    return signature_ok and bearer_ok


def signed_by_app(raw_body: bytes, signature: str, authorization: str) -> bool:
    # Every secret is checked (no early exit), so the time taken does not say which one matched.
    return any([signed_with(s, raw_body, signature, authorization) for s in SECRETS])


def error(status: int, code: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": code}, status_code=status)


app = FastAPI()
notifier = make_notifier()


@app.post(CREDIT_PATH)
async def credit(request: Request, background: BackgroundTasks):
    raw = await request.body()  # the bytes as sent: never re-serialise before verifying
    if len(raw) > MAX_BODY:
        return error(413, "BODY_TOO_LARGE")
    headers = request.headers
    if not signed_by_app(raw, headers.get("x-signature", ""), headers.get("authorization", "")):
        return error(401, "BAD_SIGNATURE")  # not 2xx: the app retries later
    try:
        body = json.loads(raw)
        key = headers["idempotency-key"]
        user_id, amount, bot_id = body["userId"], body["amount"], body.get("botId")
        valid = (key == body["depositId"] and isinstance(user_id, str)
                 and type(amount) is int and amount > 0 and body["status"] == "PAID"
                 and (bot_id is None or isinstance(bot_id, str)))
    except (ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        return error(400, "BAD_CREDIT")
    if ("default" if bot_id is None else bot_id) != BOT_ID:
        return error(403, "WRONG_BOT")  # another bot's credit: nothing stored
    applied = await asyncio.to_thread(apply_credit, key, user_id, amount, body.get("reference"))
    if applied:
        background.add_task(tell_user, user_id, amount, key)
    return {"ok": True, "replayed": not applied}


async def tell_user(user_id: str, amount: int, deposit_id: str) -> None:
    # The credit is already stored: a failed message must not undo or repeat it.
    try:
        await notifier.notify(user_id, amount, deposit_id)
    except Exception:
        logging.exception("could not notify user %s of %s", user_id, deposit_id)


if __name__ == "__main__":
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8080"))
    listener = socket.create_server((host, port))  # bound before we say so
    print(f"listening on {host}:{port}", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])
