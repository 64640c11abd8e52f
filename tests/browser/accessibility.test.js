// axe-core on the login page, a conversation and the settings, light and dark, at
// 360 px and 1280 px: any serious or critical violation fails; the others are listed
// as the tests' diagnostics.
"use strict";

const { after, before, describe, test } = require("node:test");
const h = require("./helpers");

let browser;
let account;
before(async () => {
  browser = await h.launch();
  account = await h.demoAccountIn(browser, h.uniqueName("axe"));
});
after(() => browser?.close());

describe("axe finds no serious or critical violation", () => {
  for (const colorScheme of ["light", "dark"]) {
    for (const [size, viewport] of [["360 px", h.NARROW], ["1280 px", h.WIDE]]) {
      const label = `${colorScheme}, ${size}`;
      test(label, { timeout: 45_000 }, (t) =>
        h.withPage(browser, { viewport, colorScheme, axe: true }, async (page) => {
          await page.goto("/login");
          await page.getByTestId("login-form").waitFor();
          await h.checkA11y(page, `login (${label})`, t);

          await h.api(page.context(), "POST", "/api/login", { body: { username: account.username, password: account.password } });
          await page.goto(`/c/${account.conversationId}`);
          await page.getByTestId("message-note").waitFor();
          await h.checkA11y(page, `chat (${label})`, t);

          await page.goto("/settings");
          await page.getByTestId("session-item").first().waitFor();
          await h.checkA11y(page, `settings (${label})`, t);
        }));
    }
  }
});
