// What the browser tests share: Chromium, pages that report what went wrong in them,
// accounts and data made through the API (faster than the UI where the UI is not what
// a test is about), waiting, the axe check and screenshots.
//
// The server and its settings come from the environment (scripts/browser-test.sh sets
// them): BASE_URL (the server), MAIL_DIR (its mail.file_dir), and optionally
// CHROMIUM_BIN (default /usr/bin/chromium), SCREENSHOT_DIR (default docs/screenshots)
// and ARTIFACT_DIR (a screenshot of each page a failed test leaves there).
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { chromium } = require("playwright-core");

const BASE_URL = process.env.BASE_URL;
if (!BASE_URL) {
  throw new Error("BASE_URL is not set: run scripts/browser-test.sh, or set BASE_URL and MAIL_DIR to a server's");
}
const MAIL_DIR = process.env.MAIL_DIR;
const CHROMIUM_BIN = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || path.resolve(__dirname, "../../docs/screenshots");
const ARTIFACT_DIR = process.env.ARTIFACT_DIR;

const NARROW = { width: 360, height: 740 };
const WIDE = { width: 1280, height: 800 };
const PASSWORD = "correct horse";

// A long reply (about 50 words: 2 s at the scripts' 40 ms a word): the simulated bot
// quotes up to 120 characters of the message, and short words make many of them.
const LONG_MESSAGE = `Keep going ${"on and on ".repeat(12)}until the very end`;

// ---------------------------------------------------------------- browser and pages

function launch() {
  return chromium.launch({ executablePath: CHROMIUM_BIN, headless: true });
}

/**
 * Console errors the client makes on purpose: the 401 of GET /api/me that tells it no
 * one is logged in, and the 400 of a form the server refuses.
 */
function expected(message) {
  const text = message.text();
  if (/status of 400 \(Bad Request\)/.test(text)) return true;
  return /status of 401 \(Unauthorized\)/.test(text) && new URL(message.location().url).pathname === "/api/me";
}

/**
 * Runs `fn(page)` in a page of a new browser context, then fails if the page logged an
 * unexpected console error, threw, or opened a dialog (alert, confirm). Options:
 * viewport, colorScheme, axe (axe-core loaded into every page, for checkA11y).
 */
async function withPage(browser, options, fn) {
  const context = await browser.newContext({
    baseURL: BASE_URL,
    viewport: options.viewport || WIDE,
    colorScheme: options.colorScheme || "light",
    reducedMotion: "reduce",
  });
  context.setDefaultTimeout(10_000);
  const problems = [];
  context.on("console", (message) => {
    if (message.type() === "error" && !expected(message)) problems.push(`console: ${message.text()}`);
  });
  context.on("weberror", (error) => problems.push(`uncaught: ${error.error().message}`));
  context.on("dialog", (dialog) => {
    problems.push(`dialog (${dialog.type()}): ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  // axe-core goes in as an init script: the page's CSP lets no inline script in, and
  // the page itself stays as served.
  if (options.axe) await context.addInitScript({ content: AXE_SOURCE });
  const page = await context.newPage();
  try {
    await fn(page);
    assert.deepEqual(problems, [], "the page reported problems");
  } catch (error) {
    await keepFailure(context, error);
    throw error;
  } finally {
    await context.close();
  }
}

/** Screenshots of a failed test's pages, in ARTIFACT_DIR. */
async function keepFailure(context, error) {
  if (!ARTIFACT_DIR) return;
  fs.mkdirSync(ARTIFACT_DIR, { recursive: true });
  const stamp = `${Date.now()}`;
  for (const [index, page] of context.pages().entries()) {
    const file = path.join(ARTIFACT_DIR, `failure-${stamp}-${index}.png`);
    await page.screenshot({ path: file }).catch(() => {});
    const note = `\n  the page at ${page.url()} looked like ${file}`;
    error.message += note;
    if (typeof error.stack === "string") error.stack += note;
  }
}

// ------------------------------------------------------------------ data via the API

let counter = 0;
/** A username (or other name) no other test uses: 3 to 32 letters and digits. */
function uniqueName(prefix) {
  counter += 1;
  return `${prefix}${process.pid.toString(36)}${Date.now().toString(36).slice(-5)}${counter}`;
}

/** A JSON API call with the context's cookies; fails unless it answers `status`. */
async function api(context, method, url, { body, status = 200 } = {}) {
  const response = await context.request.fetch(url, { method, data: body, failOnStatusCode: false });
  assert.equal(response.status(), status, `${method} ${url} answered ${response.status()}: ${await response.text()}`);
  return response.status() === 204 ? null : response.json();
}

/** Signs up (an existing account is fine) and logs the context in. */
async function signUp(context, { username = uniqueName("u"), email } = {}) {
  const response = await context.request.post("/api/signup", {
    data: { username, password: PASSWORD, ...(email ? { email } : {}) },
  });
  assert.ok(response.ok() || response.status() === 409, `signup answered ${response.status()}`);
  await api(context, "POST", "/api/login", { body: { username, password: PASSWORD } });
  return { username, password: PASSWORD, email };
}

function createConversation(context, name) {
  return api(context, "POST", "/api/conversations", { body: name ? { name } : {}, status: 201 });
}

/** Sends a message and waits for the whole reply (the JSON answer, no stream). */
function sendMessage(context, conversationId, text) {
  return api(context, "POST", `/api/conversations/${conversationId}/messages`, { body: { text }, status: 201 });
}

/** The stored messages of a conversation, oldest first. */
async function storedMessages(context, conversationId) {
  const page = await api(context, "GET", `/api/conversations/${conversationId}/messages?limit=100`);
  return page.messages;
}

async function storedConversations(context) {
  return (await api(context, "GET", "/api/conversations?limit=100")).conversations;
}

/** Sends `text` with a streamed answer and stops the reply after its first words. */
async function interruptedReply(context, conversationId, text) {
  const sending = context.request.post(`/api/conversations/${conversationId}/messages`, {
    data: { text },
    headers: { Accept: "text/event-stream" },
  });
  const reply = await eventually(async () => {
    const last = (await storedMessages(context, conversationId)).at(-1);
    assert.ok(last?.sender === "bot" && last.status === "streaming" && last.text, "no reply streaming yet");
    return last;
  });
  const stopped = await api(context, "POST", `/api/conversations/${conversationId}/messages/${reply.id}/stop`);
  await sending;
  return stopped;
}

/**
 * An account with something to show (for screenshots and the axe checks): a verified-
 * less email address, an empty conversation, and one with a question, a reply with
 * Markdown (code, bold, a link) and a reply stopped half-way. Made once per username.
 */
async function demoAccount(context, { username, displayName = "Ada Lovelace" }) {
  const email = `${username}@example.com`;
  const signup = await context.request.post("/api/signup", { data: { username, password: PASSWORD, email } });
  assert.ok(signup.ok() || signup.status() === 409, `signup answered ${signup.status()}`);
  await api(context, "POST", "/api/login", { body: { username, password: PASSWORD } });
  if (signup.ok()) {
    await api(context, "PATCH", "/api/me", { body: { display_name: displayName } });
    await createConversation(context, "Books to read");
    const trip = await createConversation(context, "Trip to Oslo");
    await sendMessage(context, trip.id, "Where should I go hiking in Norway?");
    await sendMessage(context, trip.id, "Is `Preikestolen` worth the climb, or **Trolltunga**? The [guide](https://example.com/hikes) says both");
    await interruptedReply(context, trip.id, LONG_MESSAGE);
  }
  const trip = (await storedConversations(context)).find((c) => c.name === "Trip to Oslo");
  return { username, password: PASSWORD, email, conversationId: trip.id };
}

/** `demoAccount` for `username`, made in a context of its own in `browser`. */
async function demoAccountIn(browser, username) {
  const context = await browser.newContext({ baseURL: BASE_URL });
  try {
    return await demoAccount(context, { username });
  } finally {
    await context.close();
  }
}

// ------------------------------------------------------------------------- waiting

/** Retries `fn` (an assertion, or anything that throws until it holds) until it passes. */
async function eventually(fn, { timeout = 10_000, interval = 50 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

// ------------------------------------------------------------------------ messages

const messages = (page) => page.getByTestId("message");
const botMessages = (page) => page.locator("[data-testid=message][data-sender=bot]");

/** What a message shows: a reply's rendered Markdown, or the user's text. */
function shownText(message) {
  return message.locator(".markdown, .user-text").innerText();
}

/**
 * Records, at every animation frame, the newest reply as the user sees it (its id,
 * status and text) whenever it changed. `frames()` returns the record so far.
 */
async function recordReply(page) {
  await page.evaluate(() => {
    const frames = [];
    window.__replyFrames = frames;
    const tick = () => {
      const reply = [...document.querySelectorAll("[data-testid=message][data-sender=bot]")].at(-1);
      if (reply) {
        const frame = { id: reply.dataset.messageId, status: reply.dataset.status, text: reply.querySelector(".markdown")?.innerText ?? "" };
        const last = frames.at(-1);
        if (!last || last.id !== frame.id || last.status !== frame.status || last.text !== frame.text) frames.push(frame);
      }
      if (window.__replyFrames === frames) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  return { frames: () => page.evaluate(() => window.__replyFrames) };
}

/** The frames of a recorded reply that showed it streaming, with some text. */
function streamingFrames(frames) {
  return frames.filter((frame) => frame.status === "streaming" && frame.text.trim() !== "");
}

/** Asserts that the recorded reply grew, each frame's text extending the one before. */
function assertGrew(frames, atLeast = 2) {
  const streaming = streamingFrames(frames);
  assert.ok(streaming.length >= atLeast, `the reply showed ${streaming.length} streaming frames with text, not ${atLeast}: ${JSON.stringify(frames)}`);
  for (let i = 1; i < streaming.length; i += 1) {
    assert.ok(streaming[i].text.startsWith(streaming[i - 1].text.trimEnd()), `the reply's text did not grow: ${JSON.stringify(streaming.slice(i - 1, i + 1))}`);
  }
}

// ------------------------------------------------------------ accessibility (axe-core)

const AXE_SOURCE = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/**
 * Runs axe-core on the page (opened with `axe: true`): fails on any violation of
 * serious or critical impact, and reports the others as the test's diagnostics.
 * Returns every violation.
 */
async function checkA11y(page, label, t) {
  const results = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const lines = results.violations.map(
    (v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.length}: ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")})`,
  );
  const review = results.incomplete.map((r) => `${r.id} (${r.nodes.length})`).join(", ") || "none";
  t.diagnostic(`axe ${label}: ${results.violations.length} violations, ${results.passes.length} rules passed, to review by hand: ${review}`);
  for (const line of lines) t.diagnostic(`axe ${label}: ${line}`);
  const severe = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(severe.map((v) => lines[results.violations.indexOf(v)]), [], `axe found serious or critical violations on ${label}`);
  return results.violations;
}

// --------------------------------------------------------------------- screenshots

/** The page's viewport as docs/screenshots/<name>.png. */
async function screenshot(page, name) {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, animations: "disabled", caret: "hide" });
  return file;
}

module.exports = {
  BASE_URL,
  MAIL_DIR,
  NARROW,
  WIDE,
  PASSWORD,
  LONG_MESSAGE,
  launch,
  withPage,
  uniqueName,
  api,
  signUp,
  createConversation,
  sendMessage,
  storedMessages,
  storedConversations,
  interruptedReply,
  demoAccountIn,
  eventually,
  messages,
  botMessages,
  shownText,
  recordReply,
  streamingFrames,
  assertGrew,
  checkA11y,
  screenshot,
};
