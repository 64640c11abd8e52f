// Markup in a reply is shown as text: no script, handler or javascript: link from the
// model reaches the page. (The simulated bot quotes the message, so the reply carries
// what the message says.)
"use strict";

const assert = require("node:assert/strict");
const { after, before, test } = require("node:test");
const h = require("./helpers");

let browser;
before(async () => {
  browser = await h.launch();
});
after(() => browser?.close());

const IMG = "<img src=x onerror=alert(1)>";
const LINK = "[link](javascript:alert(1))";

/** What a page must not have, wherever it came from. */
async function assertNothingLive(page) {
  const found = await page.evaluate(() => ({
    images: document.querySelectorAll("img").length,
    handlers: [...document.querySelectorAll("*")].flatMap((el) => el.getAttributeNames().filter((name) => /^on/i.test(name)).map((name) => `${el.tagName} ${name}`)),
    javascriptLinks: [...document.querySelectorAll("a[href]")].filter((a) => a.protocol === "javascript:").map((a) => a.outerHTML),
  }));
  assert.deepEqual(found, { images: 0, handlers: [], javascriptLinks: [] });
}

test("a reply quoting an <img onerror> and a javascript: link runs nothing", { timeout: 30_000 }, () =>
  h.withPage(browser, {}, async (page) => {
    const dialogs = [];
    page.on("dialog", (dialog) => dialogs.push(dialog.message()));
    const context = page.context();
    await h.signUp(context);
    const conversation = await h.createConversation(context);
    await page.goto(`/c/${conversation.id}`);

    await page.getByTestId("composer").fill(`${IMG} ${LINK}`);
    await page.getByTestId("composer").press("Enter");
    const reply = page.locator("[data-testid=message][data-sender=bot][data-status=complete]");
    await reply.waitFor();
    const stored = (await h.storedMessages(context, conversation.id)).at(-1);
    assert.ok(stored.text.includes(IMG) && stored.text.includes(LINK), `the reply does not quote both: ${stored.text}`);

    // Streamed in, then loaded from the API after a reload: both render the same way.
    for (const when of ["streamed", "reloaded"]) {
      if (when === "reloaded") {
        await page.reload();
        await reply.waitFor();
      }
      await page.waitForTimeout(300); // time for an image's error handler, had one got in
      assert.ok((await h.shownText(reply)).includes(IMG), `${when}: the markup shows as text`);
      assert.ok((await h.shownText(h.messages(page).first())).includes(IMG), `${when}: the message shows as text`);
      await assertNothingLive(page);
      assert.deepEqual(dialogs, [], `${when}: a dialog opened`);
    }
  }));
