// The screenshots in docs/screenshots/: the login page and a conversation, light and
// dark, narrow (360 × 740) and wide (1280 × 800), and the settings (wide, light).
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const { after, before, describe, test } = require("node:test");
const h = require("./helpers");

let browser;
let account;
before(async () => {
  browser = await h.launch();
  account = await h.demoAccountIn(browser, "ada");
});
after(() => browser?.close());

describe("screenshots", () => {
  for (const colorScheme of ["light", "dark"]) {
    for (const [size, viewport] of [["narrow", h.NARROW], ["wide", h.WIDE]]) {
      const suffix = `${size}-${colorScheme}`;
      test(suffix, { timeout: 30_000 }, (t) =>
        h.withPage(browser, { viewport, colorScheme }, async (page) => {
          const files = [];
          await page.goto("/login");
          await page.getByTestId("login-form").waitFor();
          files.push(await h.screenshot(page, `login-${suffix}`));

          await h.api(page.context(), "POST", "/api/login", { body: { username: account.username, password: account.password } });
          await page.goto(`/c/${account.conversationId}`);
          await page.getByTestId("message-note").waitFor();
          files.push(await h.screenshot(page, `chat-${suffix}`));

          if (suffix === "wide-light") {
            await page.goto("/settings");
            await page.getByTestId("session-item").first().waitFor();
            files.push(await h.screenshot(page, `settings-${suffix}`));
          }
          for (const file of files) {
            const { size: bytes } = fs.statSync(file);
            assert.ok(bytes > 1000, `${file} is ${bytes} bytes`);
            t.diagnostic(`${file.replace(/^.*\/docs\//, "docs/")} (${Math.round(bytes / 1024)} KiB)`);
          }
        }));
    }
  }
});
