// Reads the mail the server writes with its file transport (mail.file_dir): one .eml
// per mail, written in .partial/ and moved in whole, so any .eml in the folder is
// complete. Enough MIME for the server's own mails: headers, a multipart/alternative
// body, quoted-printable or base64 parts.
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { eventually } = require("./helpers");

/** Headers (names in lower case, folded lines joined) and the body of a MIME entity. */
function parseEntity(raw) {
  const split = raw.search(/\r?\n\r?\n/);
  const head = split < 0 ? raw : raw.slice(0, split);
  const body = split < 0 ? "" : raw.slice(split).replace(/^\r?\n\r?\n/, "");
  const headers = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, body };
}

function decode(body, encoding = "") {
  switch (encoding.toLowerCase()) {
    case "quoted-printable": {
      const bytes = body.replace(/=\r?\n/g, "").replace(/=([0-9A-Fa-f]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
      return Buffer.from(bytes, "latin1").toString("utf8");
    }
    case "base64":
      return Buffer.from(body, "base64").toString("utf8");
    default:
      return body;
  }
}

/** A mail's recipient header and its text/plain part, decoded. */
function readMail(file) {
  const mail = parseEntity(fs.readFileSync(file, "latin1"));
  const type = mail.headers["content-type"] || "text/plain";
  let parts = [mail];
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (boundary) {
    parts = mail.body
      .split(`--${boundary}`)
      .slice(1, -1)
      .map((part) => parseEntity(part.replace(/^\r?\n/, "")));
  }
  const plain = parts.find((part) => (part.headers["content-type"] || "text/plain").startsWith("text/plain"));
  return { to: mail.headers.to || "", subject: mail.headers.subject || "", text: plain ? decode(plain.body, plain.headers["content-transfer-encoding"]) : "" };
}

/**
 * The link to `/<kind>?token=…` in the newest mail to `address` in `dir` that has one,
 * waiting for it to be written (mail goes out in the background).
 */
function waitForLink(dir, address, kind, { timeout = 10_000 } = {}) {
  assert.ok(dir, "MAIL_DIR is not set (the server's mail.file_dir)");
  const pattern = new RegExp(`https?://[^\\s"<>]+/${kind}\\?token=[A-Za-z0-9_-]+`);
  return eventually(
    () => {
      const files = fs
        .readdirSync(dir)
        .filter((name) => name.endsWith(".eml"))
        .map((name) => path.join(dir, name))
        .map((file) => ({ file, time: fs.statSync(file).mtimeMs }))
        .sort((a, b) => b.time - a.time);
      for (const { file } of files) {
        const mail = readMail(file);
        if (!mail.to.includes(`<${address}>`) && mail.to !== address) continue;
        const link = pattern.exec(mail.text)?.[0];
        if (link) return new URL(link);
      }
      assert.fail(`no mail to ${address} with a /${kind} link in ${dir}`);
    },
    { timeout, interval: 100 },
  );
}

module.exports = { readMail, waitForLink };
