// The composer from the keyboard: Enter sends, Shift+Enter starts a new line.
"use strict";

const assert = require("node:assert/strict");
const { after, before, test } = require("node:test");
const h = require("./helpers");

let browser;
before(async () => {
  browser = await h.launch();
});
after(() => browser?.close());

test("Shift+Enter adds a line without sending; Enter sends both lines", { timeout: 30_000 }, () =>
  h.withPage(browser, {}, async (page) => {
    const context = page.context();
    await h.signUp(context);
    const conversation = await h.createConversation(context);
    await page.goto(`/c/${conversation.id}`);
    const composer = page.getByTestId("composer");
    await composer.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), "composer", "the composer has the focus");

    await page.keyboard.type("first line");
    await page.keyboard.press("Shift+Enter");
    await page.keyboard.type("second line");
    assert.equal(await composer.inputValue(), "first line\nsecond line");
    await page.waitForTimeout(300);
    assert.equal(await h.messages(page).count(), 0, "nothing was sent");
    assert.deepEqual(await h.storedMessages(context, conversation.id), []);

    await page.keyboard.press("Enter");
    await page.locator("[data-testid=message][data-sender=bot][data-status=complete]").waitFor();
    assert.equal(await composer.inputValue(), "", "the composer is emptied");
    const stored = await h.storedMessages(context, conversation.id);
    assert.equal(stored[0].text, "first line\nsecond line");
    assert.equal(await h.shownText(h.messages(page).first()), "first line\nsecond line");
  }));
