// What every Node test of `tandem serve` shares: the paths CTest hands over (TANDEM, the binary;
// TANDEM_TEST_MODEL, the model make_model.sh trained; TANDEM_TEST_OUT, a folder for what a test
// leaves behind), a server started on a free port and stopped with SIGTERM (which must exit 0),
// `tandem generate` and `tandem chat` as greedy references, and the server's /metrics and
// resident memory.
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

export function env(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set: run this test through ctest (label node), which sets ` +
                  "TANDEM, TANDEM_TEST_MODEL and TANDEM_TEST_OUT");
    process.exit(1);
  }
  return value;
}

export const tandem = env("TANDEM");
export const modelDir = env("TANDEM_TEST_MODEL");
export const outDir = env("TANDEM_TEST_OUT");
fs.mkdirSync(outDir, { recursive: true });

// The npm packages come from scripts/setup --tests (npm ci in this folder): missing is a failure,
// as for the interop tests, since CI runs setup first.
export async function requirePackage(name) {
  try {
    return await import(name);
  } catch (e) {
    console.error(`${here}/node_modules/${name} is missing: run scripts/setup --tests ` +
                  `(it runs npm ci in tests/serve/js): ${e.message}`);
    process.exit(1);
  }
}

const kListening = /tandem serve: listening on (http:\/\/\S+)/;

// Starts `tandem serve --model MODEL --port 0 ARGS` and resolves once it has printed its URL and
// /health answers 200. The server's stderr goes to OUT/NAME.log (and is kept for messages).
export async function startServer(name, args = [], { timeoutMs = 60000 } = {}) {
  const logPath = path.join(outDir, `${name}.log`);
  const log = fs.createWriteStream(logPath);
  const proc = spawn(tandem, ["serve", "--model", modelDir, "--port", "0", ...args],
                     { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stdout.pipe(log, { end: false });
  const exited = new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(
      `tandem serve printed no "listening on" line in ${timeoutMs} ms; its stderr:\n${stderr}`)), timeoutMs);
    proc.stderr.on("data", (chunk) => {
      log.write(chunk);
      if (stderr.length < 1 << 20) stderr += chunk;
      const m = kListening.exec(stderr);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    exited.then(({ code, signal }) => { clearTimeout(timer); reject(new Error(
      `tandem serve ended (code ${code}, signal ${signal}) before listening; its stderr:\n${stderr}`)); });
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(`${url}/health`);
      if (r.status === 200) break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`${url}/health never answered 200`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    pid: proc.pid,
    stderr: () => stderr,
    // SIGTERM drains and must exit 0 within `ms`; else SIGKILL and a failure.
    async stop(ms = 30000) {
      if (proc.exitCode !== null) throw new Error(`tandem serve had already ended: ${proc.exitCode}`);
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), ms);
      const { code, signal } = await exited;
      clearTimeout(timer);
      log.end();
      if (code !== 0) throw new Error(`tandem serve ended with code ${code} (signal ${signal}) ` +
                                      `after SIGTERM; its log: ${logPath}`);
    },
    kill() { if (proc.exitCode === null) proc.kill("SIGKILL"); },
  };
}

// What `tandem generate` continues `prompt` with, greedily: the engine's reference text.
export function generateGreedy(prompt, maxTokens) {
  const out = execFileSync(tandem, ["generate", "--model", modelDir, "--temperature", "0",
                                    "--max-tokens", String(maxTokens), "--prompt", prompt],
                           { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (!out.startsWith(prompt) || !out.endsWith("\n"))
    throw new Error(`tandem generate's output does not echo the prompt: ${JSON.stringify(out)}`);
  return out.slice(prompt.length, -1);
}

// What `tandem chat` prints to stdout for `messages` typed in turn, greedily: each reply and a
// newline (a reply may hold newlines of its own, so the caller compares whole transcripts).
export function chatTranscript(messages, maxTokens) {
  return execFileSync(tandem, ["chat", "--model", modelDir, "--temperature", "0",
                               "--max-tokens", String(maxTokens)],
                      { encoding: "utf8", input: messages.join("\n") + "\n",
                        stdio: ["pipe", "pipe", "pipe"] });
}

// The number of tokens of `text` in the model's tokenizer (no special tokens added: the tiny
// model's tokenizer adds none to a prompt either).
export function countTokens(text) {
  const out = execFileSync(tandem, ["tokenizer", "encode", "--tokenizer", modelDir],
                           { encoding: "utf8", input: text, stdio: ["pipe", "pipe", "pipe"] });
  return out.split(/\s+/).filter((s) => s).length;
}

// One sample of a metric in /metrics (Prometheus text), by its name with any labels.
export async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const [key, value] = line.trim().split(/\s+/);
    if (key === name) return Number(value);
  }
  throw new Error(`/metrics has no ${name}:\n${text}`);
}

// Waits until the KV pages in use fall to 0 (a cancelled sequence frees its pages at the next
// step); returns the last value read.
export async function kvPagesDrained(url, ms = 10000) {
  const deadline = Date.now() + ms;
  let pages;
  while ((pages = await metric(url, "tandem_kv_pages_in_use")) !== 0 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  return pages;
}

// VmRSS of a process, in kB.
export function residentKb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m[1]);
}

export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}
