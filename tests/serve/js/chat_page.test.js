// The chat page of `tandem serve` in a real browser: Debian's chromium, headless, driven by npm
// puppeteer-core. A message sent from the page streams back the server's own greedy reply, the
// reply shows tokens/s, the stop button ends a reply that is still streaming (read slowly by the
// page, so that there is time to press it), and the KV pages are back in the pool at the end; a
// screenshot lands in TANDEM_TEST_OUT. Skipped (CTest exit code 77) where chromium is missing.
import fs from "node:fs";
import path from "node:path";
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, requirePackage, outDir, kvPagesDrained } from "./harness.js";

// TANDEM_CHROMIUM names another browser binary (or a missing one, to see the skip).
const kChromium = (process.env.TANDEM_CHROMIUM ? [process.env.TANDEM_CHROMIUM]
                                               : ["/usr/bin/chromium", "/usr/bin/chromium-browser"])
  .find((p) => fs.existsSync(p));
if (!kChromium) {
  console.log(`SKIP: no chromium at ${process.env.TANDEM_CHROMIUM || "/usr/bin/chromium"} ` +
              "(Debian package chromium; scripts/setup --tests installs it)");
  process.exit(77);
}
const { default: puppeteer } = await requirePackage("puppeteer-core");

let server, browser, page;

before(async () => {
  server = await startServer("chat_page", ["--max-seqs", "4"]);
  browser = await puppeteer.launch({
    executablePath: kChromium,
    headless: true,
    // Chromium's sandbox refuses to run as root (CI containers): only then is it turned off.
    args: process.getuid() === 0 ? ["--no-sandbox", "--disable-dev-shm-usage"] : [],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1000, height: 800 });
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(server.url + "/", { waitUntil: "load" });
});
after(async () => {
  if (browser) await browser.close();
  if (server) {
    assert.equal(await kvPagesDrained(server.url), 0, "KV pages still in use at the end");
    await server.stop();
  }
});

// Types `text` into the composer with the given settings and sends it; resolves when the
// assistant's message `index` (0-based) has stopped streaming.
async function send(text, { temperature, maxTokens }) {
  await page.$eval("#temperature", (e, v) => { e.value = v; }, String(temperature));
  await page.$eval("#max-tokens", (e, v) => { e.value = v; }, String(maxTokens));
  await page.type("#prompt", text);
  await page.keyboard.press("Enter");
}

const lastReply = () => page.$eval(".msg.assistant:last-of-type", (div) => ({
  text: div.querySelector(".body").textContent,
  stats: div.querySelector(".stats").textContent,
  streaming: div.classList.contains("streaming"),
  error: div.classList.contains("error"),
}));

test("the page names the served model", async () => {
  await page.waitForFunction(() => document.getElementById("model").textContent !== "…");
  const name = await page.$eval("#model", (e) => e.textContent);
  const models = await (await fetch(server.url + "/v1/models")).json();
  assert.equal(name, models.data[0].id);
});

test("a message gets the server's greedy reply, streamed, with tokens/s", async () => {
  const message = "Tell me about computers.";
  await send(message, { temperature: 0, maxTokens: 40 });
  await page.waitForSelector(".msg.assistant:not(.streaming)", { timeout: 30000 });
  const reply = await lastReply();
  assert.equal(reply.error, false, reply.stats);
  const direct = await (await fetch(server.url + "/v1/chat/completions", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content: message }], temperature: 0,
                           max_tokens: 40 }) })).json();
  assert.ok(reply.text.length > 0, "the reply is not empty");
  assert.equal(reply.text, direct.choices[0].message.content);
  assert.match(reply.stats, /\d+ tokens · [\d.]+ tokens\/s · first token \d+ ms · (stop|length)/);
  const users = await page.$$eval(".msg.user .body", (ds) => ds.map((d) => d.textContent));
  assert.deepEqual(users, [message]);
  await page.screenshot({ path: path.join(outDir, "chat_page.png"), fullPage: true });
});

test("the stop button ends a streaming reply", async () => {
  // The tiny model answers in milliseconds, faster than any click, and Chromium's network
  // throttling holds a streamed body back whole. So the page is made to read its stream slowly:
  // each read of a response body hands over at most 64 bytes, 250 ms apart (about 256 B/s), until
  // the page aborts its fetch; from then on a read fails with the AbortError that a body still in
  // flight fails with (here the whole body has long arrived, so the real stream just closes).
  await page.evaluate(() => {
    const proto = ReadableStreamDefaultReader.prototype;
    const read = proto.read;
    const abort = AbortController.prototype.abort;
    AbortController.prototype.abort = function (...args) {
      window.__aborted = true;
      return abort.apply(this, args);
    };
    proto.read = async function () {
      if (window.__aborted) throw new DOMException("The user aborted a request.", "AbortError");
      await new Promise((resolve) => setTimeout(resolve, 250));
      if (!this.__rest || this.__rest.length === 0) {
        const r = await read.call(this);
        if (r.done) return r;
        this.__rest = r.value;
      }
      const value = this.__rest.slice(0, 64);
      this.__rest = this.__rest.slice(64);
      return { value, done: false };
    };
  });
  // A new conversation: the first one and a long reply would not fit the tiny model's context
  // of 256 (the server answers 400, and the page shows that error).
  await page.click("#reset");
  await send("Say something wise.", { temperature: 1, maxTokens: 150 });
  await page.waitForFunction(() => {
    const bodies = document.querySelectorAll(".msg.assistant.streaming .body");
    return bodies.length === 1 && bodies[0].textContent.length > 0;
  }, { timeout: 30000 });
  assert.equal(await page.$eval("#stop", (b) => b.disabled), false);
  assert.equal(await page.$eval("#send", (b) => b.disabled), true);
  await page.click("#stop");
  await page.waitForSelector(".msg.assistant:last-of-type:not(.streaming)", { timeout: 10000 });
  const reply = await lastReply();
  assert.match(reply.stats, /stopped$/);
  assert.ok(reply.text.length > 0);
  assert.equal(await page.$eval("#stop", (b) => b.disabled), true);
  assert.equal(await page.$eval("#send", (b) => b.disabled), false);
  await page.screenshot({ path: path.join(outDir, "chat_page_stopped.png"), fullPage: true });
});

test("New chat clears the conversation", async () => {
  await page.click("#reset");
  assert.equal(await page.$$eval(".msg", (ds) => ds.length), 0);
});
