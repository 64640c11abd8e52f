// Two tabs of one browser: what one sends, the other shows as it happens (WebSocket),
// without a reload.
"use strict";

const assert = require("node:assert/strict");
const { after, before, test } = require("node:test");
const h = require("./helpers");

let browser;
before(async () => {
  browser = await h.launch();
});
after(() => browser?.close());

test("a second tab sees the message and its reply arrive live", { timeout: 30_000 }, (t) =>
  h.withPage(browser, {}, async (first) => {
    const context = first.context();
    await h.signUp(context);
    const conversation = await h.createConversation(context);
    const second = await context.newPage();
    for (const page of [first, second]) {
      await page.goto(`/c/${conversation.id}`);
      await page.getByTestId("composer").waitFor();
    }
    // The second tab's socket is up once it shows a change made elsewhere.
    const other = await h.createConversation(context, "Made elsewhere");
    await second.locator(`[data-testid=conversation-item][data-conversation-id="${other.id}"]`).waitFor();

    const replies = await h.recordReply(second);
    let reloads = 0;
    second.on("load", () => (reloads += 1));
    const text = "Which islands of the Lofoten archipelago are best for a first visit by ferry";
    await first.getByTestId("composer").fill(text);
    await first.getByTestId("composer").press("Enter");

    await second.locator("[data-testid=message][data-sender=user]").filter({ hasText: "Lofoten" }).waitFor();
    await second.locator("[data-testid=message][data-sender=bot][data-status=complete]").waitFor();
    await first.locator("[data-testid=message][data-sender=bot][data-status=complete]").waitFor();

    const stored = await h.storedMessages(context, conversation.id);
    assert.deepEqual(stored.map((m) => [m.sender, m.status]), [["user", "complete"], ["bot", "complete"]]);
    assert.equal(await h.messages(second).count(), 2);
    assert.equal(await h.shownText(h.messages(second).first()), text);
    assert.equal(await h.shownText(h.botMessages(second).last()), stored[1].text);
    const frames = await replies.frames();
    h.assertGrew(frames);
    t.diagnostic(`the reply grew over ${h.streamingFrames(frames).length} frames in the second tab`);
    assert.equal(reloads, 0, "the second tab did not reload");

    // The title the first message gives the conversation reaches the second tab too.
    await h.eventually(async () => {
      const { name } = (await h.storedConversations(context)).find((c) => c.id === conversation.id);
      assert.notEqual(name, "New conversation");
      assert.equal(await second.getByTestId("conversation-title").innerText(), name);
    });
  }));
