// A new user's first conversation, all through the UI: sign up, start a chat, send a
// message, watch the reply stream in, and find it stored as shown.
"use strict";

const assert = require("node:assert/strict");
const { after, before, test } = require("node:test");
const h = require("./helpers");

let browser;
before(async () => {
  browser = await h.launch();
});
after(() => browser?.close());

test("sign up, start a chat, and the reply streams in and is stored as shown", { timeout: 30_000 }, (t) =>
  h.withPage(browser, {}, async (page) => {
    const username = h.uniqueName("new");
    await page.goto("/");
    await page.waitForURL("**/login");
    await page.getByTestId("show-signup").click();
    await page.getByTestId("signup-username").fill(username);
    await page.getByTestId("signup-password").fill(h.PASSWORD);
    await page.getByTestId("signup-form-submit").click();
    await page.waitForURL((url) => url.pathname === "/");
    assert.equal(await page.getByTestId("account-name").innerText(), username);

    await page.getByTestId("new-chat").click();
    await page.waitForURL("**/c/*");
    const conversationId = Number(new URL(page.url()).pathname.split("/").pop());
    const list = page.getByTestId("conversation-item");
    await list.filter({ has: page.locator(`[href="/c/${conversationId}"]`) }).waitFor();

    const replies = await h.recordReply(page);
    const text = "Tell me about the lighthouses along the coast of Norway and the people who kept them";
    await page.getByTestId("composer").fill(text);
    await page.getByTestId("send").click();
    await page.getByTestId("stop").waitFor();
    const reply = h.botMessages(page).last();
    await page.locator("[data-testid=message][data-sender=bot][data-status=complete]").waitFor();

    const stored = await h.storedMessages(page.context(), conversationId);
    assert.deepEqual(stored.map((m) => [m.sender, m.status]), [["user", "complete"], ["bot", "complete"]]);
    assert.equal(stored[0].text, text);
    assert.equal(await h.shownText(h.messages(page).first()), text);
    assert.equal(await h.shownText(reply), stored[1].text);
    assert.equal(await reply.getAttribute("data-message-id"), String(stored[1].id));

    const frames = await replies.frames();
    h.assertGrew(frames);
    t.diagnostic(`the reply grew over ${h.streamingFrames(frames).length} frames`);
    assert.equal(frames.at(-1).status, "complete");
    assert.ok(stored[1].text.startsWith(h.streamingFrames(frames).at(-1).text), "the last streamed text is not the start of the stored one");
    assert.ok(await page.getByTestId("send").isVisible(), "Send is back once the reply is done");
    assert.ok(await page.getByTestId("stop").isHidden(), "Stop is gone once the reply is done");
    assert.equal(await page.getByTestId("composer").inputValue(), "", "the composer is emptied");
  }));
