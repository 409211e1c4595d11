// Drives the operator console (GET /console) in headless Chromium against a running app.
//
//   CONSOLE_URL=http://127.0.0.1:3000 ADMIN_TOKEN=... PENDING_ID=... OWED_ID=... \
//   CREDITED_ID=... REFUND_ID=... REFUND_REF=... [SCREENSHOT=list.png] [CHROMIUM=/usr/bin/chromium] \
//   node tests/browser/console.mjs
//
// Prints one line per step passed; exits 0 when all pass, 1 on the first failure (with the
// page's status line, and a screenshot at $SCREENSHOT.fail.png when SCREENSHOT is set).
// The resend and refund steps change the app's data: give it fresh deposits each run.

import { chromium } from "playwright-core";

const TOTAL_MS = 60_000;
const STEP_WAIT_MS = 15_000;
const env = process.env;

const REQUIRED = ["CONSOLE_URL", "ADMIN_TOKEN", "PENDING_ID", "OWED_ID", "CREDITED_ID", "REFUND_ID", "REFUND_REF"];
const missing = REQUIRED.filter((name) => !env[name]);
if (missing.length) {
  console.error(`FAIL setup: missing environment variable(s): ${missing.join(", ")}`);
  process.exit(1);
}
const base = env.CONSOLE_URL.replace(/\/+$/, "");
const origin = new URL(base).origin;
const token = env.ADMIN_TOKEN;
const ids = {
  pending: env.PENDING_ID,
  owed: env.OWED_ID,
  credited: env.CREDITED_ID,
  refund: env.REFUND_ID,
};
const refundRef = env.REFUND_REF;
const allIds = Object.values(ids);

const startedAt = Date.now();
let browser = null;
let page = null;
let current = "setup";
let failing = false;
const requests = [];
const responses = [];
const pageProblems = [];

const timer = setTimeout(() => fail(new Error(`timed out: the whole run takes over ${TOTAL_MS / 1000} s`)), TOTAL_MS);

// Reports the failed step, the page's status line and a screenshot, then exits 1.
async function fail(err) {
  if (failing) return;
  failing = true;
  console.error(`FAIL step ${current}: ${err && err.message ? err.message : err}`);
  if (page) {
    const status = await page.getByTestId("status-line").textContent({ timeout: 2_000 }).catch(() => null);
    console.error(`  status line: ${status === null ? "(unreadable)" : JSON.stringify(status)}`);
    if (pageProblems.length) console.error(`  page problems: ${pageProblems.join(" | ")}`);
    if (env.SCREENSHOT) {
      const path = `${env.SCREENSHOT}.fail.png`;
      await page.screenshot({ path, timeout: 5_000 })
        .then(() => console.error(`  screenshot: ${path}`))
        .catch((e) => console.error(`  screenshot failed: ${e.message}`));
    }
  }
  await Promise.race([browser ? browser.close().catch(() => {}) : null, sleep(3_000)]);
  console.error(`browser: ${passed} passed, 1 failed`);
  process.exit(1);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Polls `check` until it returns a truthy value; throws `what` when the wait runs out.
async function until(what, check, ms = STEP_WAIT_MS) {
  const end = Math.min(Date.now() + ms, startedAt + TOTAL_MS);
  let last = null;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) {
      throw new Error(`${what} (waited ${Math.round(ms / 1000)} s${last ? `; last error: ${last.message}` : ""})`);
    }
    await sleep(100);
  }
}

let stepNo = 0;
let passed = 0;
async function step(name, body) {
  stepNo += 1;
  current = `${stepNo} (${name})`;
  await body();
  passed += 1;
  console.log(`ok ${stepNo} - ${name}`);
}

const byTestId = (id) => page.getByTestId(id);

async function listIdle() {
  await until("the deposit list to finish loading",
    async () => (await byTestId("list").getAttribute("aria-busy")) === "false");
}

async function detailIdle() {
  await until("the deposit detail to finish loading", async () =>
    (await byTestId("detail").isVisible()) && (await byTestId("detail").getAttribute("aria-busy")) === "false");
}

async function shownIds() {
  return page.$$eval('[data-testid="rows"] > tr[data-testid^="row-"]',
    (rows) => rows.map((row) => row.getAttribute("data-testid").slice("row-".length)));
}

// Clicks "Load more" until every id in `wanted` is in the table; returns the ids shown.
async function loadUntilShown(wanted, why) {
  for (;;) {
    await listIdle();
    const shown = new Set(await shownIds());
    const absent = wanted.filter((id) => !shown.has(id));
    if (absent.length === 0) return shown;
    const more = byTestId("more");
    if (!(await more.isVisible())) {
      throw new Error(`${why}: ${absent.join(", ")} not in the list after loading every page (${shown.size} rows shown)`);
    }
    await more.click();
  }
}

async function applyStatus(value) {
  await byTestId("filter-status").selectOption(value);
  await byTestId("apply").click();
  await listIdle();
}

async function openDeposit(id) {
  if (!(await byTestId("list").isVisible())) await byTestId("back").click();
  await loadUntilShown([id], `opening ${id}`);
  await byTestId(`row-${id}`).click();
  await detailIdle();
  await until(`the detail of ${id} to open`,
    async () => ((await page.locator("#detail-title").textContent()) || "").includes(id));
}

async function detailState() {
  return ((await byTestId("detail-state").textContent()) || "").trim();
}

// Texts of the timeline entries of the given kind.
async function timelineTexts(kind) {
  return page.$$eval('[data-testid="timeline"] > li',
    (items, k) => items.filter((li) => li.dataset.kind === k).map((li) => li.textContent), kind);
}

async function main() {
  browser = await chromium.launch({
    executablePath: env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.setDefaultTimeout(STEP_WAIT_MS);
  page.on("request", (req) => requests.push(req.url()));
  page.on("response", (res) => responses.push({ url: res.url(), status: res.status() }));
  page.on("pageerror", (e) => pageProblems.push(`page error: ${e.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error" && /Content Security Policy|Refused to/i.test(msg.text())) {
      pageProblems.push(`CSP: ${msg.text()}`);
    }
  });

  await step("a wrong token is refused", async () => {
    const answer = await page.goto(`${base}/console`);
    if (!answer || answer.status() !== 200) {
      throw new Error(`GET ${base}/console answered ${answer ? answer.status() : "nothing"}`);
    }
    await byTestId("token").fill("wrong");
    await byTestId("login").click();
    await until('the status line to say "token refused"',
      async () => /token refused/i.test((await byTestId("status-line").textContent()) || ""));
    if (!responses.some((r) => r.url.startsWith(`${origin}/admin/`) && r.status === 401)) {
      throw new Error("the page said token refused but no API call answered 401");
    }
    if (!(await byTestId("token").isVisible())) throw new Error("the token field is not offered again");
    if (await byTestId("rows").isVisible()) throw new Error("the deposit list shows without a valid token");
  });

  await step("logging in lists the four deposits", async () => {
    await byTestId("token").fill(token);
    await byTestId("login").click();
    await until("the deposit list to appear", () => byTestId("list").isVisible());
    await loadUntilShown(allIds, "the unfiltered list");
  });

  await step("the status filter narrows and resets the list", async () => {
    await applyStatus("pending");
    const shown = await loadUntilShown([ids.pending], "status=pending");
    if (shown.has(ids.credited)) throw new Error(`status=pending still shows ${ids.credited} (CREDITED_ID)`);
    await applyStatus("");
    await loadUntilShown(allIds, "after resetting the status filter");
    if (env.SCREENSHOT) {
      // The top of the list, no row hovered.
      await page.mouse.move(0, 0);
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: env.SCREENSHOT });
      console.log(`  screenshot: ${env.SCREENSHOT}`);
    }
  });

  await step("resend credits an owed deposit", async () => {
    await openDeposit(ids.owed);
    const before = await detailState();
    if (before !== "OWED") throw new Error(`detail-state of ${ids.owed} is ${JSON.stringify(before)}, not OWED`);
    if (!(await byTestId("resend").isEnabled())) throw new Error("the resend button is disabled on an OWED deposit");
    await byTestId("resend").click();
    await until(`${ids.owed} to show state CREDITED after resend`, async () => (await detailState()) === "CREDITED");
    await until("an action entry mentioning resend in the timeline",
      async () => (await timelineTexts("action")).some((t) => /resend/i.test(t)));
    await detailIdle();
    if (await byTestId("resend").isEnabled()) throw new Error("the resend button stays enabled on a CREDITED deposit");
  });

  await step("a refund is marked handled", async () => {
    await openDeposit(ids.refund);
    const open = byTestId(`refund-${refundRef}`);
    await until(`a "Mark refund handled" button for ${refundRef}`, () => open.isVisible());
    await open.click();
    const reason = byTestId(`refund-reason-${refundRef}`);
    await reason.fill("refunded by bank transfer (browser test)");
    await byTestId(`refund-confirm-${refundRef}`).click();
    const item = byTestId(`refund-item-${refundRef}`);
    await until(`refund ${refundRef} to show as handled`, async () =>
      (await open.count()) === 0 && /handled/i.test((await item.textContent()) || ""));
    await until("an action entry mentioning refund in the timeline",
      async () => (await timelineTexts("action")).some((t) => /refund/i.test(t)));
  });

  await step("no other origin was asked and the token was kept out of reach", async () => {
    const foreign = requests.filter((url) => !url.startsWith("data:") && new URL(url).origin !== origin);
    if (foreign.length) throw new Error(`requests to other origins: ${foreign.join(", ")}`);
    const leakedUrl = requests.filter((url) => url.includes(token));
    if (leakedUrl.length) throw new Error(`the token is in a request URL: ${leakedUrl[0]}`);
    if (page.url().includes(token)) throw new Error("the token is in the page URL");
    const stored = await page.evaluate(() => {
      const dump = (s) => Array.from({ length: s.length }, (_, i) => s.key(i) + "=" + s.getItem(s.key(i))).join("\n");
      return { cookie: document.cookie, local: dump(localStorage), session: dump(sessionStorage) };
    });
    for (const [where, text] of Object.entries(stored)) {
      if (text.includes(token)) throw new Error(`the token is in ${where === "cookie" ? "document.cookie" : where + "Storage"}`);
    }
    const cookies = await context.cookies();
    if (cookies.some((c) => c.value.includes(token))) throw new Error("the token is in a cookie");
    if (pageProblems.length) throw new Error(pageProblems.join(" | "));
  });

  clearTimeout(timer);
  await browser.close();
  console.log(`browser: ${passed} passed, 0 failed (${((Date.now() - startedAt) / 1000).toFixed(1)} s)`);
}

main().catch(fail);
