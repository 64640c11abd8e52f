// The conversation list: renaming inline (Enter saves) and deleting (after a confirmation).
"use strict";

const assert = require("node:assert/strict");
const { after, before, test } = require("node:test");
const h = require("./helpers");

let browser;
before(async () => {
  browser = await h.launch();
});
after(() => browser?.close());

const names = (page) => page.getByTestId("conversation-link").allInnerTexts();
const row = (page, id) => page.locator(`[data-testid=conversation-item][data-conversation-id="${id}"]`);

test("rename a conversation inline with Enter: the list, the title and the API agree", { timeout: 30_000 }, () =>
  h.withPage(browser, {}, async (page) => {
    const context = page.context();
    await h.signUp(context);
    const groceries = await h.createConversation(context, "Groceries");
    await h.createConversation(context, "Holiday ideas");
    await page.goto(`/c/${groceries.id}`);
    await page.getByTestId("conversation-item").nth(1).waitFor();
    assert.deepEqual(await names(page), ["Holiday ideas", "Groceries"]);

    await row(page, groceries.id).getByTestId("rename-conversation").click();
    const input = page.getByTestId("rename-input");
    assert.equal(await input.inputValue(), "Groceries");
    await input.fill("Weekend market");
    await input.press("Enter");
    await input.waitFor({ state: "detached" });

    await row(page, groceries.id).getByText("Weekend market").waitFor();
    assert.equal(await page.getByTestId("conversation-title").innerText(), "Weekend market");
    const focused = await page.evaluate(() => document.activeElement?.getAttribute("href"));
    assert.equal(focused, `/c/${groceries.id}`, "the keyboard stays on the renamed row");
    const stored = await h.storedConversations(context);
    assert.equal(stored.find((c) => c.id === groceries.id).name, "Weekend market");
    assert.deepEqual(await names(page), stored.map((c) => c.name), "the list shows the stored names in the stored order");
  }));

test("delete a conversation after confirming: gone from the list and from the API", { timeout: 30_000 }, () =>
  h.withPage(browser, {}, async (page) => {
    const context = page.context();
    await h.signUp(context);
    const keep = await h.createConversation(context, "Keep me");
    const doomed = await h.createConversation(context, "Delete me");
    await h.sendMessage(context, doomed.id, "A message that goes with it");
    await page.goto(`/c/${doomed.id}`);
    await h.messages(page).nth(1).waitFor();

    // Cancel first: nothing happens.
    await row(page, doomed.id).getByTestId("delete-conversation").click();
    await page.getByTestId("confirm-dialog").waitFor();
    await page.getByTestId("confirm-cancel").click();
    await page.getByTestId("confirm-dialog").waitFor({ state: "detached" });
    assert.deepEqual(await names(page), ["Delete me", "Keep me"]);

    await row(page, doomed.id).getByTestId("delete-conversation").click();
    const dialog = page.getByTestId("confirm-dialog");
    assert.match(await dialog.innerText(), /Delete me/);
    await page.getByTestId("confirm-ok").click();
    await row(page, doomed.id).waitFor({ state: "detached" });

    assert.deepEqual(await names(page), ["Keep me"]);
    await page.waitForURL((url) => url.pathname === "/", { timeout: 5_000 });
    assert.equal(await page.getByTestId("notice").innerText(), "That conversation was deleted.");
    assert.deepEqual((await h.storedConversations(context)).map((c) => c.id), [keep.id]);
    await h.api(context, "GET", `/api/conversations/${doomed.id}/messages`, { status: 404 });
  }));
