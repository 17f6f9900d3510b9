#!/usr/bin/python3
"""PyTorch reference for tests/rl/grpo_loss_test.cpp: the GRPO loss and its gradient on a tiny
Qwen3-shaped model (the torch model of tests/interop/make_torch_fixtures.py) over fixed rollouts.

Four rollouts in two groups of two, each a prompt and a completion padded to T positions; the
old-policy and reference log-probabilities are the current ones plus noise, so that ratios land
on both sides of the clip range. Two cases: "grpo" (std-normalised advantages, eps 0.2 / 0.28,
beta 0.04, token-level mean) and "dr_grpo" (no std, beta 0, sum / (sequences x max tokens)).

Writes tests/rl/fixtures/grpo_tiny.safetensors with
    weights/<hf name>            the weights
    tokens, targets              i32 [B, T]: targets -100 outside the completions
    logp_old, logp_ref           [B, T] (0 outside the completions)
    rewards                      [B]
    <case>/advantages [B], <case>/loss [1], <case>/grads/<hf name>
and grpo_tiny.json with the config and each case's hyper-parameters. Every input is an exact f32
value and the math runs in float64.

Run with Debian's python: /usr/bin/python3 tests/rl/make_grpo_fixture.py
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))
from make_torch_fixtures import llama_forward, llama_params, random_params, save_safetensors  # noqa: E402

IGNORE = -100
B, T, G = 4, 10, 2
CASES = {
    "grpo": dict(mode="grpo", epsilon_low=0.2, epsilon_high=0.28, beta=0.04, max_completion_tokens=0),
    "dr_grpo": dict(mode="dr_grpo", epsilon_low=0.2, epsilon_high=0.2, beta=0.0, max_completion_tokens=8),
}


def f32(t):
    return t.float().double()


def advantages_of(rewards, mode):
    groups = rewards.view(-1, G)
    centred = groups - groups.mean(dim=1, keepdim=True)
    if mode == "grpo":
        centred = centred / (groups.std(dim=1, keepdim=True) + 1e-4)
    return centred.reshape(-1)


def grpo_loss(logp, old, ref, adv, mask, hp):
    ratio = torch.exp(logp - old)
    clipped = torch.clamp(ratio, 1 - hp["epsilon_low"], 1 + hp["epsilon_high"])
    per_token = -torch.min(ratio * adv[:, None], clipped * adv[:, None])
    if hp["beta"] > 0:
        d = ref - logp
        per_token = per_token + hp["beta"] * (torch.exp(d) - d - 1)
    if hp["mode"] == "dr_grpo":
        z = logp.shape[0] * hp["max_completion_tokens"]
    else:
        z = mask.sum()
    return (per_token * mask).sum() / z


def main():
    cfg = dict(family="llama", n_layers=2, n_heads=4, n_heads_kv=2, d_model=32, head_dim=16,
               d_ffn=48, vocab_size=101, max_seq_len=16, rope_theta=10000.0, norm_eps=1e-6,
               tie_embeddings=False, qk_norm=True)
    gen = torch.Generator().manual_seed(18)
    spec = llama_params(cfg)
    p = random_params(spec, gen)
    V = cfg["vocab_size"]
    tokens = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)
    # Row i: its prompt predicts nothing, then completion tokens, then padding (ignored).
    prompt_len, completion_len = [3, 4, 2, 5], [6, 3, 7, 4]
    targets = torch.full((B, T), IGNORE, dtype=torch.int64)
    mask = torch.zeros(B, T, dtype=torch.float64)
    for i in range(B):
        for t in range(prompt_len[i] - 1, prompt_len[i] - 1 + completion_len[i]):
            targets[i, t] = tokens[i, t + 1] if t + 1 < T else int(torch.randint(0, V, (1,), generator=gen))
            mask[i, t] = 1
    rewards = torch.tensor([1.0, 0.0, 0.5, 1.1], dtype=torch.float64)

    def logp_of():
        logits = llama_forward(p, cfg, tokens)
        all_logp = torch.log_softmax(logits, dim=-1)
        return all_logp.gather(-1, targets.clamp(min=0)[..., None])[..., 0] * mask

    with torch.no_grad():
        now = logp_of()
    old = f32((now + 0.3 * torch.randn(B, T, generator=gen, dtype=torch.float64)) * mask)
    ref = f32((now + 0.2 * torch.randn(B, T, generator=gen, dtype=torch.float64)) * mask)

    out = {f"weights/{n}": t.detach().float() for n, t in p.items()}
    out["tokens"], out["targets"] = tokens.int(), targets.int()
    out["logp_old"], out["logp_ref"], out["rewards"] = old.float(), ref.float(), rewards.float()
    meta = {"config": cfg, "batch": B, "seq": T, "group_size": G, "ignore_index": IGNORE,
            "cases": CASES, "torch_version": torch.__version__}
    for name, hp in CASES.items():
        for t in p.values():
            t.grad = None
        adv = advantages_of(rewards, hp["mode"])
        loss = grpo_loss(logp_of(), old, ref, adv, mask, hp)
        loss.backward()
        ratio = torch.exp(logp_of().detach() - old)
        outside = ((ratio < 1 - hp["epsilon_low"]) | (ratio > 1 + hp["epsilon_high"])) & (mask > 0)
        assert outside.any() and (~outside & (mask > 0)).any(), "the ratios must straddle the clip range"
        out[f"{name}/advantages"] = adv.float()
        out[f"{name}/loss"] = loss.detach().float().reshape(1)
        for n, t in p.items():
            out[f"{name}/grads/{n}"] = t.grad.detach().float()
        meta[f"{name}_loss"] = float(loss)
        print(f"{name}: loss {float(loss):.6f}, {int(outside.sum())} of {int(mask.sum())} ratios outside the range")

    os.makedirs(os.path.join(HERE, "fixtures"), exist_ok=True)
    save_safetensors(os.path.join(HERE, "fixtures", "grpo_tiny.safetensors"), out)
    with open(os.path.join(HERE, "fixtures", "grpo_tiny.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
