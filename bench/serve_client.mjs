// bench/serve.sh's client: C concurrent clients stream R requests in all from an OpenAI-compatible
// server's /v1/completions (the same prompt, greedy, max_tokens N, end of text ignored, so that
// every reply is N tokens), and print one JSON line: requests, tokens, the aggregate generated
// tokens/s over the whole run, the decode rate (tokens after every client's first stream had its
// first token, over that time: bench generate's definition), and time-to-first-token p50/p90.
// Node 20, no packages. Usage: node serve_client.mjs URL CLIENTS REQUESTS MAX_TOKENS PROMPT_FILE [same|distinct]
// same (the default): every request sends the prompt as it is, so a server's prefix cache serves
// all but the first; distinct: request i begins with "Request i." and shares no prefix at all.
import fs from "node:fs";

const [url, clients, requests, maxTokens, promptFile, prompts = "same"] = process.argv.slice(2);
const nClients = Number(clients), nRequests = Number(requests), nTokens = Number(maxTokens);
const basePrompt = fs.readFileSync(promptFile, "utf8");
if (prompts !== "same" && prompts !== "distinct") throw new Error(`prompts: ${prompts} (same or distinct)`);

// One streamed completion: its time to the first token, and each content event's arrival time.
async function stream(index) {
  const prompt = prompts === "distinct" ? `Request ${index}. ${basePrompt}` : basePrompt;
  const start = performance.now();
  const response = await fetch(`${url}/v1/completions`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ prompt, max_tokens: nTokens, temperature: 0, stream: true,
                           ignore_eos: true, stream_options: { include_usage: true } }) });
  if (response.status !== 200) throw new Error(`${response.status}: ${await response.text()}`);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", usage = null;
  const arrivals = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const data = buffer.slice(0, cut).replace(/^data: /, "");
      buffer = buffer.slice(cut + 2);
      if (data === "[DONE]") continue;
      const chunk = JSON.parse(data);
      if (chunk.usage) usage = chunk.usage;
      if (chunk.choices?.some((c) => c.text)) arrivals.push(performance.now());
    }
  }
  // Tokens: the usage the server reports (a held-back UTF-8 piece can merge two tokens' events).
  const tokens = usage?.completion_tokens ?? arrivals.length;
  return { start, first: arrivals[0], end: performance.now(), arrivals, tokens };
}

let next = 0;
const results = [];
async function client() {
  while (next < nRequests) {
    results.push(await stream(next++));
  }
}
const t0 = performance.now();
await Promise.all(Array.from({ length: nClients }, client));
const t1 = performance.now();

const tokens = results.reduce((s, r) => s + r.tokens, 0);
// Decode: from the moment the first nClients streams all had a token to the last token.
const firstWave = [...results].sort((a, b) => a.start - b.start).slice(0, nClients);
const allStarted = Math.max(...firstWave.map((r) => r.first));
let after = 0;
for (const r of results) {
  const scale = r.tokens / Math.max(1, r.arrivals.length);
  after += r.arrivals.filter((t) => t > allStarted).length * scale;
}
const lastToken = Math.max(...results.map((r) => r.arrivals.at(-1)));
const ttft = results.map((r) => r.first - r.start).sort((a, b) => a - b);
const pct = (p) => ttft[Math.min(ttft.length - 1, Math.floor(p * ttft.length))];
console.log(JSON.stringify({
  requests: results.length, clients: nClients, tokens, seconds: (t1 - t0) / 1000,
  tok_s: tokens / ((t1 - t0) / 1000), decode_tok_s: after / ((lastToken - allStarted) / 1000),
  ttft_p50_ms: pct(0.5), ttft_p90_ms: pct(0.9),
}));
