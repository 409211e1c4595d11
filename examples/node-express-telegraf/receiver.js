// Credit receiver for bot-topup-backend: express takes the app's signed credit call,
// credits.js applies it once, Telegraf tells the user on Telegram.
import express from "express";
import { Telegraf } from "telegraf";
import { logNotifier, openStore, receiveCredit } from "./credits.js";

const secret = process.env.SHARED_SECRET;
if (!secret) throw new Error("SHARED_SECRET is required");
// While the secret rotates, credits signed with the previous one are accepted too.
const secrets = [secret, process.env.SHARED_SECRET_PREVIOUS].filter(Boolean);
// The bot this receiver serves: its credits carry `"botId"` (none for `default`).
const botId = process.env.BOT_ID || "default";
const host = process.env.HOST ?? "127.0.0.1";
const port = Number(process.env.PORT ?? 8080);
const creditPath = process.env.CREDIT_PATH ?? "/internal/deposit-callback";

/** Sends the user a Telegram message; `userId` is the chat id, optionally `tg:`-prefixed. */
function telegramNotifier(token) {
  const bot = new Telegraf(token);
  return {
    async notify({ userId, amount, depositId }) {
      const chatId = userId.replace(/^tg:/, "");
      await bot.telegram.sendMessage(chatId, `Top-up of Rp ${amount} received (${depositId}).`);
    },
  };
}

const notifier =
  process.env.NOTIFIER === "log" ? logNotifier : telegramNotifier(process.env.TELEGRAM_BOT_TOKEN);
const store = await openStore(process.env.DB_PATH ?? "receiver.db");
const app = express();

// express.raw keeps the bytes as sent: the signature is over them, never over re-serialised JSON.
app.post(creditPath, express.raw({ type: () => true, limit: "64kb" }), (req, res) => {
  const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  const answer = receiveCredit(raw, req.headers, { secrets, botId, store });
  res.status(answer.status).json(answer.body);
  if (answer.credited) {
    // The credit is stored: a failed message must not undo or repeat it.
    notifier.notify(answer.credited).catch((error) => console.error("notify failed:", error.message));
  }
});

app.use((error, req, res, _next) => {
  console.error("credit failed:", error.message);
  res.status(error.status ?? 500).json({ ok: false, error: error.status ? "BAD_REQUEST" : "STORE_ERROR" });
});

app.listen(port, host, (error) => {
  if (error) throw error;
  console.log(`listening on ${host}:${port}`);
});
