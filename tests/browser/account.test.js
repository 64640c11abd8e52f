// Leaving and coming back: logging out, and a forgotten password reset by mail.
"use strict";

const assert = require("node:assert/strict");
const { after, before, test } = require("node:test");
const h = require("./helpers");
const { waitForLink } = require("./mail");

let browser;
before(async () => {
  browser = await h.launch();
});
after(() => browser?.close());

test("log out: back to the login page, and the session is over", { timeout: 30_000 }, () =>
  h.withPage(browser, {}, async (page) => {
    const context = page.context();
    const { username } = await h.signUp(context);
    await page.goto("/");
    assert.equal(await page.getByTestId("account-name").innerText(), username);

    await page.getByTestId("logout").click();
    await page.waitForURL("**/login");
    await page.getByTestId("login-form").waitFor();
    assert.equal(await page.getByTestId("notice").innerText(), "You are logged out.");
    assert.equal(await page.getByTestId("account-name").count(), 0);
    await h.api(context, "GET", "/api/me", { status: 401 });

    // The app's pages send a logged-out visitor to the login page.
    await page.goto("/settings");
    await page.waitForURL("**/login");
    await page.getByTestId("login-form").waitFor();
  }));

test("forgot password: the mailed link sets a new one, which logs in", { timeout: 30_000 }, () =>
  h.withPage(browser, {}, async (page) => {
    const context = page.context();
    const username = h.uniqueName("reset");
    const email = `${username}@example.com`;
    await h.api(context, "POST", "/api/signup", { body: { username, password: h.PASSWORD, email }, status: 201 });

    await page.goto("/login");
    await page.getByTestId("show-forgot").click();
    await page.getByTestId("forgot-email").fill(email);
    await page.getByTestId("forgot-form-submit").click();
    await page.getByTestId("forgot-form-done").filter({ hasText: /\S/ }).waitFor();

    const link = await waitForLink(h.MAIL_DIR, email, "reset");
    await page.goto(link.pathname + link.search);
    await page.getByTestId("reset-password").fill("battery staple");
    await page.getByTestId("reset-form-submit").click();
    await page.getByTestId("reset-done").waitFor();

    await page.getByTestId("reset-done").getByRole("link").click();
    await page.waitForURL("**/login");
    await page.getByTestId("login-username").fill(username);
    await page.getByTestId("login-password").fill("battery staple");
    await page.getByTestId("login-form-submit").click();
    await page.waitForURL((url) => url.pathname === "/");
    assert.equal(await page.getByTestId("account-name").innerText(), username);

    const me = await h.api(context, "GET", "/api/me");
    assert.equal(me.username, username);
    assert.equal(me.email_verified, true, "a reset counts the address as verified");
    await h.api(context, "POST", "/api/login", { body: { username, password: h.PASSWORD }, status: 401 });
  }));
