// `tandem serve` under the official `openai` npm client (v6), as users point it at the server:
// completions and chat completions, streamed and not, n > 1, stop strings, seeds, usage counts,
// errors; greedy replies equal `tandem generate` and `tandem chat` on the same model. Run by
// CTest (label node) over the tiny trained model of make_model.sh.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, requirePackage, generateGreedy, chatTranscript, countTokens, kvPagesDrained }
  from "./harness.js";

const { default: OpenAI } = await requirePackage("openai");

const kModel = "tiny-fortunes";
let server, client;

before(async () => {
  server = await startServer("openai", ["--served-model-name", kModel, "--max-seqs", "8"]);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
});
after(async () => {
  if (!server) return;
  assert.equal(await kvPagesDrained(server.url), 0, "KV pages still in use at the end");
  await server.stop();
});

const kPrompt = "The secret of science is";
const kChat = "Tell me something wise.";

async function streamText(stream, pick) {
  let text = "";
  const finishes = [];
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      text += pick(choice) ?? "";
      if (choice.finish_reason) finishes.push(choice.finish_reason);
    }
  }
  return { text, finishes, usage };
}

test("models: the served name is listed", async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [kModel]);
});

test("completions: greedy text equals tandem generate, with the tokenizer's usage", async () => {
  const r = await client.completions.create({ model: kModel, prompt: kPrompt, max_tokens: 24,
                                              temperature: 0 });
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].text, generateGreedy(kPrompt, 24));
  assert.ok(r.choices[0].text.length > 0, "the trained model says something");
  assert.equal(r.usage.prompt_tokens, countTokens(kPrompt));
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 24);
  if (r.choices[0].finish_reason === "length") assert.equal(r.usage.completion_tokens, 24);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test("completions: streamed text equals the whole one, usage in the last chunk", async () => {
  const whole = await client.completions.create({ model: kModel, prompt: kPrompt, max_tokens: 24,
                                                  temperature: 0 });
  const stream = await client.completions.create({
    model: kModel, prompt: kPrompt, max_tokens: 24, temperature: 0, stream: true,
    stream_options: { include_usage: true } });
  const s = await streamText(stream, (c) => c.text);
  assert.equal(s.text, whole.choices[0].text);
  assert.deepEqual(s.finishes, [whole.choices[0].finish_reason]);
  assert.deepEqual(s.usage, whole.usage);
});

test("chat: greedy reply equals tandem chat's, streamed equals whole", async () => {
  const messages = [{ role: "user", content: kChat }];
  const r = await client.chat.completions.create({ model: kModel, messages, max_tokens: 24,
                                                   temperature: 0 });
  assert.equal(r.choices[0].message.role, "assistant");
  const reply = r.choices[0].message.content;
  assert.equal(reply + "\n", chatTranscript([kChat], 24));
  assert.ok(["stop", "length"].includes(r.choices[0].finish_reason));
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);

  const stream = await client.chat.completions.create({
    model: kModel, messages, max_tokens: 24, temperature: 0, stream: true,
    stream_options: { include_usage: true } });
  const s = await streamText(stream, (c) => c.delta?.content);
  assert.equal(s.text, reply);
  assert.deepEqual(s.usage, r.usage);

  // A second turn sees the first, as tandem chat's does.
  const two = await client.chat.completions.create({
    model: kModel, max_tokens: 24, temperature: 0,
    messages: [...messages, { role: "assistant", content: reply },
               { role: "user", content: "And then?" }] });
  assert.equal(reply + "\n" + two.choices[0].message.content + "\n",
               chatTranscript([kChat, "And then?"], 24));
});

test("n > 1: n choices, repeated by the same seed, changed by another", async () => {
  const ask = (seed, stream = false) => client.completions.create({
    model: kModel, prompt: kPrompt, max_tokens: 16, temperature: 1, n: 3, seed, stream });
  const a = await ask(11), b = await ask(11), c = await ask(12);
  assert.deepEqual(a.choices.map((x) => x.index).sort(), [0, 1, 2]);
  const texts = (r) => [...r.choices].sort((x, y) => x.index - y.index).map((x) => x.text);
  assert.deepEqual(texts(a), texts(b));
  assert.notDeepEqual(texts(a), texts(c));
  assert.ok(new Set(texts(a)).size > 1, `three samples all alike: ${texts(a)}`);
  // Streamed, each choice's deltas add up to the same samples.
  const byIndex = ["", "", ""];
  for await (const chunk of await ask(11, true))
    for (const choice of chunk.choices) byIndex[choice.index] += choice.text;
  assert.deepEqual(byIndex, texts(a));

  const chats = await client.chat.completions.create({
    model: kModel, messages: [{ role: "user", content: kChat }], max_tokens: 12, temperature: 1,
    n: 2, seed: 5 });
  assert.equal(chats.choices.length, 2);
});

test("stop strings end the text before them, streamed or not", async () => {
  const full = generateGreedy(kPrompt, 32);
  // A stop string from the middle of the greedy text: the reply is the text before it.
  const at = Math.floor(full.length / 2);
  const stop = full.slice(at, at + 3);
  assert.equal(stop.length, 3, `greedy text too short: ${JSON.stringify(full)}`);
  const expected = full.slice(0, full.indexOf(stop));
  const r = await client.completions.create({ model: kModel, prompt: kPrompt, max_tokens: 32,
                                              temperature: 0, stop: ["\u0000never", stop] });
  assert.equal(r.choices[0].text, expected);
  assert.equal(r.choices[0].finish_reason, "stop");
  const s = await streamText(await client.completions.create({
    model: kModel, prompt: kPrompt, max_tokens: 32, temperature: 0, stop, stream: true }),
    (c) => c.text);
  assert.equal(s.text, expected);
  assert.deepEqual(s.finishes, ["stop"]);
});

test("errors reach the client as OpenAI errors with their status", async () => {
  await assert.rejects(
    client.completions.create({ model: kModel, prompt: kPrompt, max_tokens: -1 }),
    (e) => e.status === 400 && /max_tokens/.test(e.message));
  await assert.rejects(
    client.chat.completions.create({ model: kModel, messages: [] }),
    (e) => e.status === 400 && /messages/.test(e.message));
  await assert.rejects(
    client.completions.create({ model: "no-such-model", prompt: kPrompt }),
    (e) => e.status === 404 && /no-such-model/.test(e.message));
  // The server keeps serving.
  const r = await client.completions.create({ model: kModel, prompt: kPrompt, max_tokens: 2 });
  assert.equal(r.choices.length, 1);
});
