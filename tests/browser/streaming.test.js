// A reply being written: stopped with the Stop button, and followed across a reload.
"use strict";

const assert = require("node:assert/strict");
const { after, before, test } = require("node:test");
const h = require("./helpers");

let browser;
before(async () => {
  browser = await h.launch();
});
after(() => browser?.close());

/** A logged-in page on a new conversation, ready to send. */
async function openChat(page) {
  await h.signUp(page.context());
  const conversation = await h.createConversation(page.context());
  await page.goto(`/c/${conversation.id}`);
  await page.getByTestId("composer").waitFor();
  return conversation.id;
}

/** The newest reply once it shows some text while streaming. */
async function replyUnderWay(page) {
  const reply = page.locator("[data-testid=message][data-sender=bot][data-status=streaming]").last();
  await reply.locator(".markdown").filter({ hasText: /\S/ }).waitFor();
  return reply;
}

test("Stop ends a reply half-way: shown as stopped, its text kept as stored", { timeout: 30_000 }, () =>
  h.withPage(browser, {}, async (page) => {
    const conversationId = await openChat(page);
    await page.getByTestId("composer").fill(h.LONG_MESSAGE);
    await page.keyboard.press("Enter");
    const reply = await replyUnderWay(page);
    const id = await reply.getAttribute("data-message-id");
    await page.getByTestId("stop").click();

    const stopped = page.locator(`[data-testid=message][data-message-id="${id}"]`);
    await page.locator(`[data-testid=message][data-message-id="${id}"][data-status=interrupted]`).waitFor();
    assert.match(await stopped.getByTestId("message-note").innerText(), /^Stopped before the end\./);
    assert.ok(await stopped.getByTestId("retry").isVisible(), "the stopped reply offers Try again");
    await page.getByTestId("send").waitFor();
    assert.ok(await page.getByTestId("stop").isHidden());

    const stored = (await h.storedMessages(page.context(), conversationId)).at(-1);
    assert.equal(String(stored.id), id);
    assert.equal(stored.status, "interrupted");
    assert.ok(stored.text.trim() !== "", "some text was kept");
    assert.ok(!stored.text.includes("Tell me more"), `the stored reply looks complete: ${stored.text}`);
    // The reply as it stopped stays: no later delta changes it.
    await page.waitForTimeout(300);
    assert.equal(await h.shownText(stopped), stored.text.trim());
    assert.equal((await h.storedMessages(page.context(), conversationId)).at(-1).text, stored.text);
  }));

test("a reload during a reply: the reply goes on after it, and ends as stored", { timeout: 30_000 }, () =>
  h.withPage(browser, {}, async (page) => {
    const conversationId = await openChat(page);
    await page.getByTestId("composer").fill(h.LONG_MESSAGE);
    await page.keyboard.press("Enter");
    const before = await h.shownText(await replyUnderWay(page));

    await page.reload();
    const id = await (await replyUnderWay(page)).getAttribute("data-message-id");
    const replies = await h.recordReply(page);
    const reply = page.locator(`[data-testid=message][data-message-id="${id}"]`);
    await page.locator("[data-testid=message][data-sender=bot][data-status=complete]").waitFor();

    const stored = await h.storedMessages(page.context(), conversationId);
    assert.deepEqual(stored.map((m) => [m.sender, m.status]), [["user", "complete"], ["bot", "complete"]]);
    assert.equal(await h.messages(page).count(), 2, "each message shows once");
    assert.equal(await h.shownText(reply), stored[1].text);
    assert.ok(stored[1].text.startsWith(before.trimEnd()), "the text shown before the reload is the start of the reply");
    assert.ok(stored[1].text.length > before.length, "the reply went on after the reload");
    const frames = await replies.frames();
    assert.ok(h.streamingFrames(frames).length >= 1, `the reply was seen streaming after the reload: ${JSON.stringify(frames)}`);
    assert.equal(frames.at(-1).status, "complete");
  }));
