// The credit call of bot-topup-backend, framework-free: signature check over the raw body,
// one SQLite file (sql.js: pure WebAssembly, installs from npm alone) that applies each
// Idempotency-Key once. The same file is in every Node example; keep the copies identical.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import initSqlJs from "sql.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS balances (user_id TEXT PRIMARY KEY, balance INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS credits (
  idempotency_key TEXT PRIMARY KEY, user_id TEXT NOT NULL, amount INTEGER NOT NULL,
  reference TEXT, credited_at INTEGER NOT NULL);`;

/** Opens (or creates) the SQLite file at `file`. */
export async function openStore(file) {
  const SQL = await initSqlJs();
  const load = () =>
    new SQL.Database(fs.existsSync(file) ? fs.readFileSync(file) : undefined);
  let db = load();
  db.run(SCHEMA);

  // sql.js keeps the database in memory: each change is written to a new file, flushed and
  // renamed over the old one, so the file always holds a whole database.
  function persist() {
    const partial = `${file}.partial`;
    const fd = fs.openSync(partial, "w");
    try {
      fs.writeSync(fd, db.export());
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(partial, file);
    const dir = fs.openSync(path.dirname(path.resolve(file)), "r");
    try {
      fs.fsyncSync(dir);
    } finally {
      fs.closeSync(dir);
    }
  }

  persist(); // the file exists, with its tables, from the start

  return {
    /** Records the key and adds to the balance in one transaction; false if the key was seen. */
    apply(key, userId, amount, reference) {
      db.run("BEGIN IMMEDIATE");
      let inserted;
      try {
        db.run(
          "INSERT INTO credits VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
          [key, userId, amount, reference ?? null, Date.now()],
        );
        inserted = db.getRowsModified() === 1;
        if (inserted) {
          db.run(
            `INSERT INTO balances VALUES (?, ?)
             ON CONFLICT(user_id) DO UPDATE SET balance = balance + excluded.balance`,
            [userId, amount],
          );
        }
        db.run("COMMIT");
      } catch (error) {
        db.run("ROLLBACK");
        throw error;
      }
      if (inserted) {
        try {
          persist();
        } catch (error) {
          db = load(); // back to what the file holds, so a retry applies the key again
          throw error;
        }
      }
      return inserted;
    },
  };
}

/** Whether the bearer token and the HMAC of the bytes received are ours (constant time). */
export function signedByApp(rawBody, headers, secret) {
  const expected = Buffer.from(
    crypto.createHmac("sha256", secret).update(rawBody).digest("hex"),
  );
  const given = Buffer.from(String(headers["x-signature"] ?? ""));
  const signatureOk =
    given.length === expected.length && crypto.timingSafeEqual(given, expected);
  // Hashing both sides first makes the comparison constant-time whatever the lengths.
  const digest = (s) => crypto.createHash("sha256").update(String(s)).digest();
  const bearerOk = crypto.timingSafeEqual(
    digest(headers["authorization"] ?? ""),
    digest(`Bearer ${secret}`),
  );
  return signatureOk && bearerOk;
}

/**
 * Handles one credit call for bot `botId` (`default` when the app has one bot). `secrets` are
 * SHARED_SECRET and, while it rotates, SHARED_SECRET_PREVIOUS. Answers 2xx when the credit is
 * stored (or was already), and otherwise a status the app retries later. `credited` is set the
 * first time a key is applied.
 */
export function receiveCredit(rawBody, headers, { secrets, botId = "default", store }) {
  // Every secret is checked (no early exit), so the time taken does not say which one matched.
  const signed = secrets.map((secret) => signedByApp(rawBody, headers, secret));
  if (!signed.includes(true)) {
    return { status: 401, body: { ok: false, error: "BAD_SIGNATURE" } };
  }
  let credit;
  try {
    credit = JSON.parse(rawBody.toString("utf8"));
  } catch {
    credit = null;
  }
  const key = headers["idempotency-key"];
  const valid =
    credit !== null &&
    typeof credit === "object" &&
    key === credit.depositId &&
    typeof credit.userId === "string" &&
    Number.isSafeInteger(credit.amount) &&
    credit.amount > 0 &&
    credit.status === "PAID" &&
    (credit.botId == null || typeof credit.botId === "string");
  if (!valid) {
    return { status: 400, body: { ok: false, error: "BAD_CREDIT" } };
  }
  // Another bot's credit (no `botId` = `default`): refused, nothing stored.
  if ((credit.botId ?? "default") !== botId) {
    return { status: 403, body: { ok: false, error: "WRONG_BOT" } };
  }
  const applied = store.apply(key, credit.userId, credit.amount, credit.reference);
  return {
    status: 200,
    body: { ok: true, replayed: !applied },
    credited: applied
      ? { userId: credit.userId, amount: credit.amount, depositId: key }
      : undefined,
  };
}

/** A notifier that prints instead of sending (tests, dry runs). */
export const logNotifier = {
  async notify({ userId, amount, depositId }) {
    console.log(`notify ${JSON.stringify({ userId, amount, depositId })}`);
  },
};
