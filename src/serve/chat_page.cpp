// The chat page as one raw string. The script keeps the conversation in memory, sends it to
// /v1/chat/completions with stream: true and include_usage, parses the server-sent events off
// fetch's ReadableStream and shows each reply as it grows, with its token count, tokens/s (from
// the first token to the last, so the prompt's time does not dilute it) and time to first token.
// Model output goes into the page as textContent only, never as HTML. The Content-Security-Policy
// lets the page reach only its own origin.
#include "serve/chat_page.h"

namespace tandem::serve {

namespace {

constexpr std::string_view kPage = R"page(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:">
<title>tandem chat</title>
<style>
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, sans-serif; background: #f4f4f1; color: #1d1d1b;
         display: flex; flex-direction: column; height: 100vh; }
  header { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; padding: 8px 14px;
           background: #23303b; color: #eef; }
  header h1 { font-size: 16px; margin: 0 10px 0 0; }
  header label { font-size: 13px; display: flex; gap: 5px; align-items: center; }
  header input { width: 5.5em; padding: 2px 4px; }
  header input#api-key { width: 11em; }
  #model { font-family: ui-monospace, monospace; font-size: 13px; opacity: 0.8; }
  #messages { flex: 1; overflow-y: auto; padding: 14px; }
  .msg { max-width: 52em; margin: 0 auto 12px auto; padding: 9px 12px; border-radius: 8px;
         background: #fff; box-shadow: 0 1px 2px #0002; }
  .msg.user { background: #dcebf7; }
  .msg .role { font-size: 12px; font-weight: 600; text-transform: uppercase; opacity: 0.55; }
  .msg .body { white-space: pre-wrap; word-wrap: break-word; }
  .msg .stats { font-size: 12px; color: #667; margin-top: 4px; }
  .msg.error .stats { color: #b00; }
  .msg.streaming .body::after { content: "\25ae"; opacity: 0.5; }
  form { display: flex; gap: 8px; padding: 10px 14px; background: #e6e6e0; }
  #system { display: block; width: 100%; max-width: 52em; margin: 0 auto; font: inherit; }
  textarea#prompt { flex: 1; resize: vertical; min-height: 3em; font: inherit; padding: 6px; }
  button { font: inherit; padding: 6px 14px; }
  details { padding: 4px 14px; background: #e6e6e0; font-size: 13px; }
</style>
</head>
<body>
<header>
  <h1>tandem</h1>
  <span id="model" title="the model this server serves">…</span>
  <label for="temperature">temperature
    <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.7"></label>
  <label for="max-tokens">max tokens
    <input id="max-tokens" type="number" min="1" step="1" value="512"></label>
  <label for="api-key">API key
    <input id="api-key" type="password" autocomplete="off" placeholder="optional"></label>
  <button id="reset" type="button" title="start a new conversation">New chat</button>
</header>
<main id="messages" aria-live="polite"></main>
<details>
  <summary>System message</summary>
  <textarea id="system" rows="2" placeholder="optional: sent first in every request"></textarea>
</details>
<form id="composer">
  <textarea id="prompt" rows="2" placeholder="Message (Enter sends, Shift+Enter for a new line)"
            aria-label="message"></textarea>
  <button id="send" type="submit">Send</button>
  <button id="stop" type="button" disabled>Stop</button>
</form>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let history = [];        // {role, content} of the conversation so far
let controller = null;   // the AbortController of the reply being streamed
let model = "";

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  const label = document.createElement("div");
  label.className = "role";
  label.textContent = role;
  const body = document.createElement("div");
  body.className = "body";
  body.textContent = text;
  const stats = document.createElement("div");
  stats.className = "stats";
  div.append(label, body, stats);
  $("messages").appendChild(div);
  div.scrollIntoView({block: "end"});
  return {div, body, stats};
}

function requestHeaders() {
  const headers = {"Content-Type": "application/json"};
  const key = $("api-key").value.trim();
  if (key) headers["Authorization"] = "Bearer " + key;
  return headers;
}

async function loadModel() {
  try {
    const response = await fetch("/v1/models", {headers: requestHeaders()});
    const list = await response.json();
    if (response.ok && list.data && list.data.length) {
      model = list.data[0].id;
      $("model").textContent = model;
    } else {
      $("model").textContent = list.error ? list.error.message : "no model";
    }
  } catch (e) {
    $("model").textContent = "server unreachable";
  }
}

// Reads server-sent events off the response body and calls onData with each event's data;
// onData returns false to stop reading (at "[DONE]").
async function readEvents(response, onData) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buffer = (buffer + decoder.decode(value, {stream: true})).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        if (onData(line.slice(5).trim()) === false) {
          reader.cancel();
          return;
        }
      }
    }
  }
}

function describeStats(s, now) {
  const parts = [];
  const tokens = s.usageTokens ?? s.chunks;
  parts.push(tokens + (tokens === 1 ? " token" : " tokens"));
  const end = s.last || now;
  if (s.first && tokens > 1 && end > s.first)
    parts.push(((tokens - 1) / ((end - s.first) / 1000)).toFixed(1) + " tokens/s");
  if (s.first) parts.push("first token " + Math.round(s.first - s.start) + " ms");
  if (s.finish) parts.push(s.finish);
  return parts.join(" · ");
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
}

async function send() {
  const text = $("prompt").value;
  if (!text.trim() || controller) return;
  $("prompt").value = "";
  history.push({role: "user", content: text});
  addMessage("user", text);
  const reply = addMessage("assistant", "");
  reply.div.classList.add("streaming");
  controller = new AbortController();
  setBusy(true);

  const system = $("system").value.trim();
  const messages = system ? [{role: "system", content: system}, ...history] : history.slice();
  const request = {model, messages, stream: true, stream_options: {include_usage: true}};
  const temperature = parseFloat($("temperature").value);
  if (!Number.isNaN(temperature)) request.temperature = temperature;
  const maxTokens = parseInt($("max-tokens").value, 10);
  if (maxTokens > 0) request.max_tokens = maxTokens;

  const s = {start: performance.now(), first: 0, last: 0, chunks: 0, usageTokens: null, finish: ""};
  let content = "";
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers: requestHeaders(), body: JSON.stringify(request),
      signal: controller.signal});
    if (!response.ok) {
      let message = response.status + " " + response.statusText;
      try { message = (await response.json()).error.message; } catch (e) { /* not JSON */ }
      throw new Error(message);
    }
    await readEvents(response, (data) => {
      if (data === "[DONE]") return false;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.usage) s.usageTokens = chunk.usage.completion_tokens;
      for (const choice of chunk.choices || []) {
        const piece = choice.delta && choice.delta.content;
        if (piece) {
          const now = performance.now();
          if (!s.first) s.first = now;
          s.last = now;
          s.chunks += 1;
          content += piece;
          reply.body.textContent = content;
        }
        if (choice.finish_reason) s.finish = choice.finish_reason;
      }
      reply.stats.textContent = describeStats(s, performance.now());
      reply.div.scrollIntoView({block: "end"});
      return true;
    });
  } catch (e) {
    if (e.name === "AbortError") {
      s.finish = "stopped";
    } else {
      reply.div.classList.add("error");
      s.finish = "error: " + e.message;
    }
  } finally {
    reply.div.classList.remove("streaming");
    reply.stats.textContent = describeStats(s, performance.now());
    if (content) history.push({role: "assistant", content});
    else history.pop();  // nothing came back: the user's message can be sent again
    controller = null;
    setBusy(false);
    $("prompt").focus();
  }
}

$("composer").addEventListener("submit", (e) => { e.preventDefault(); send(); });
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); }
});
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
$("reset").addEventListener("click", () => {
  if (controller) controller.abort();
  history = [];
  $("messages").replaceChildren();
  $("prompt").focus();
});
$("api-key").addEventListener("change", loadModel);
loadModel();
</script>
</body>
</html>
)page";

}  // namespace

std::string_view chat_page_html() { return kPage; }

}  // namespace tandem::serve
