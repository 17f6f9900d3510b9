#!/usr/bin/python3
"""PyTorch reference fixtures for tests/interop/torch_parity_test.cpp.

Small torch modules mirror the Hugging Face GPT-2, Llama, Qwen2 and Qwen3 math exactly
(transformers is not needed): GPT-2 with Conv1D weights [in, out], LayerNorm, tanh GELU and a tied
LM head; the Llama family with RMSNorm, optional q/k/v biases (Qwen2), optional per-head q/k
RMSNorm before rotate-half RoPE (Qwen3), RoPE frequencies optionally rescaled as Llama 3.1 does
(rope_scaling "llama3"), grouped-query attention by repeat_interleave of the kv heads, SwiGLU and a
tied or untied LM head. Everything is computed in float64 from weights that are exactly f32
values, and stored as f32. The fixtures: gpt2_tiny, qwen3_tiny (GQA, qk-norm, untied), llama3_tiny
(theta 500000, llama3 rope_scaling over 64 original positions, so that at 8 positions one
frequency is blended and the rest slowed) and qwen2_tiny (GQA, q/k/v biases, tied).

For each model it writes tests/interop/fixtures/<name>.safetensors with
    weights/<hf name>       the initial weights
    tokens, targets         i32 [B, T] (targets hold ignore_index -100 at some positions)
    logits                  [B, T, V] and loss [1] of the first forward
    grads/<hf name>         every gradient of the mean loss
    adamw_step3/<hf name>   the weights after 3 steps of clip_grad_norm_ + torch.optim.AdamW
                            (same batch each step; weight decay on matrix weights only)
and <name>.json with tandem's config, the hyper-parameters and the per-step gradient norms.

Run with Debian's python: /usr/bin/python3 tests/interop/make_torch_fixtures.py [NAME ...]
(NAMEs pick fixtures to rewrite; torch's threaded sums differ in the last bits from run to run,
so rewrite only the fixtures whose math changed.)
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
IGNORE = -100
B, T = 2, 8
HP = dict(lr=1e-2, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, steps=3)


# ---- safetensors, written by hand: u64 header length, JSON header, raw little-endian data ----
def save_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        dtype = {torch.float32: "F32", torch.int32: "I32"}[t.dtype]
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # keep the data area 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


# ---- the math of the two families, on a dict of HF-named parameters ----
def causal_attention(q, k, v):
    """q [B, H, T, D], k/v [B, H, T, D] (kv heads already repeated)."""
    t = q.shape[2]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    mask = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gpt2_forward(p, cfg, tokens):
    C, H, L = cfg["d_model"], cfg["n_heads"], cfg["n_layers"]
    eps = cfg["norm_eps"]
    b, t = tokens.shape
    x = p["wte.weight"][tokens] + p["wpe.weight"][:t]
    for i in range(L):
        n = lambda s: f"h.{i}.{s}"
        h = F.layer_norm(x, (C,), p[n("ln_1.weight")], p[n("ln_1.bias")], eps)
        qkv = h @ p[n("attn.c_attn.weight")] + p[n("attn.c_attn.bias")]  # Conv1D: [in, out]
        q, k, v = qkv.split(C, dim=2)
        heads = lambda z: z.view(b, t, H, C // H).transpose(1, 2)
        y = causal_attention(heads(q), heads(k), heads(v)).transpose(1, 2).reshape(b, t, C)
        x = x + y @ p[n("attn.c_proj.weight")] + p[n("attn.c_proj.bias")]
        h = F.layer_norm(x, (C,), p[n("ln_2.weight")], p[n("ln_2.bias")], eps)
        h = gelu_tanh(h @ p[n("mlp.c_fc.weight")] + p[n("mlp.c_fc.bias")])
        x = x + h @ p[n("mlp.c_proj.weight")] + p[n("mlp.c_proj.bias")]
    x = F.layer_norm(x, (C,), p["ln_f.weight"], p["ln_f.bias"], eps)
    head = p["wte.weight"] if cfg["tie_embeddings"] else p["lm_head.weight"]
    return x @ head.t()


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def llama3_inv_freq(inv_freq, scaling):
    """transformers' _compute_llama3_parameters: per band of wavelength 2 pi / f, keep the high
    frequencies, divide the low ones by factor, blend linearly in (old_len / wavelen) between."""
    factor, lo, hi = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_len = scaling["original_max_positions"]
    wavelen = 2 * math.pi / inv_freq
    slowed = torch.where(wavelen > old_len / lo, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - lo) / (hi - lo)
    blended = (1 - smooth) * slowed / factor + smooth * slowed
    in_band = (wavelen >= old_len / hi) & (wavelen <= old_len / lo)
    return torch.where(in_band, blended, slowed)


def rope_inv_freq(d, theta, scaling=None):
    inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    return llama3_inv_freq(inv_freq, scaling) if scaling else inv_freq


def rope(x, theta, scaling=None, pos_offset=0):
    """x [B, heads, T, D]; the Hugging Face Llama/Qwen rotate-half RoPE; scaling is tandem's
    rope_scaling dict (llama3) or None."""
    d, t = x.shape[-1], x.shape[2]
    inv_freq = rope_inv_freq(d, theta, scaling)
    freqs = torch.outer(torch.arange(pos_offset, pos_offset + t, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)  # angles in f64, like tandem
    return x * cos + rotate_half(x) * sin


def llama_forward(p, cfg, tokens):
    """Llama, Qwen2 (cfg qkv_bias) and Qwen3 (cfg qk_norm); tokens [B, T] -> logits [B, T, V]."""
    H, Hkv, D, L = cfg["n_heads"], cfg["n_heads_kv"], cfg["head_dim"], cfg["n_layers"]
    eps, theta, scaling = cfg["norm_eps"], cfg["rope_theta"], cfg.get("rope_scaling")
    has_bias = cfg.get("qkv_bias", False)
    proj = lambda h, name: h @ p[name + ".weight"].t() + (p[name + ".bias"] if has_bias else 0)
    b, t = tokens.shape
    x = p["model.embed_tokens.weight"][tokens]
    for i in range(L):
        n = lambda s: f"model.layers.{i}.{s}"
        h = rms_norm(x, p[n("input_layernorm.weight")], eps)
        q = proj(h, n("self_attn.q_proj")).view(b, t, H, D)
        k = proj(h, n("self_attn.k_proj")).view(b, t, Hkv, D)
        v = proj(h, n("self_attn.v_proj")).view(b, t, Hkv, D)
        if cfg["qk_norm"]:  # per head, before RoPE
            q = rms_norm(q, p[n("self_attn.q_norm.weight")], eps)
            k = rms_norm(k, p[n("self_attn.k_norm.weight")], eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q, k = rope(q, theta, scaling), rope(k, theta, scaling)
        k = k.repeat_interleave(H // Hkv, dim=1)  # query head j reads kv head j // (H / Hkv)
        v = v.repeat_interleave(H // Hkv, dim=1)
        y = causal_attention(q, k, v).transpose(1, 2).reshape(b, t, H * D)
        x = x + y @ p[n("self_attn.o_proj.weight")].t()
        h = rms_norm(x, p[n("post_attention_layernorm.weight")], eps)
        gate = h @ p[n("mlp.gate_proj.weight")].t()
        up = h @ p[n("mlp.up_proj.weight")].t()
        x = x + (F.silu(gate) * up) @ p[n("mlp.down_proj.weight")].t()
    x = rms_norm(x, p["model.norm.weight"], eps)
    head = p["model.embed_tokens.weight"] if cfg["tie_embeddings"] else p["lm_head.weight"]
    return x @ head.t()


# ---- parameters: names, shapes and which ones are decayed (the same table as tandem's) ----
def gpt2_params(cfg):
    C, F_, V = cfg["d_model"], cfg["d_ffn"], cfg["vocab_size"]
    spec = [("wte.weight", (V, C), "embedding"), ("wpe.weight", (cfg["max_seq_len"], C), "embedding")]
    for i in range(cfg["n_layers"]):
        n = lambda s: f"h.{i}.{s}"
        spec += [(n("ln_1.weight"), (C,), "norm"), (n("ln_1.bias"), (C,), "bias"),
                 (n("attn.c_attn.weight"), (C, 3 * C), "matrix"), (n("attn.c_attn.bias"), (3 * C,), "bias"),
                 (n("attn.c_proj.weight"), (C, C), "matrix"), (n("attn.c_proj.bias"), (C,), "bias"),
                 (n("ln_2.weight"), (C,), "norm"), (n("ln_2.bias"), (C,), "bias"),
                 (n("mlp.c_fc.weight"), (C, F_), "matrix"), (n("mlp.c_fc.bias"), (F_,), "bias"),
                 (n("mlp.c_proj.weight"), (F_, C), "matrix"), (n("mlp.c_proj.bias"), (C,), "bias")]
    spec += [("ln_f.weight", (C,), "norm"), ("ln_f.bias", (C,), "bias")]
    if not cfg["tie_embeddings"]:
        spec.append(("lm_head.weight", (V, C), "matrix"))
    return spec


def llama_params(cfg):
    C, F_, V, D = cfg["d_model"], cfg["d_ffn"], cfg["vocab_size"], cfg["head_dim"]
    HD, KD = cfg["n_heads"] * D, cfg["n_heads_kv"] * D
    spec = [("model.embed_tokens.weight", (V, C), "embedding")]
    for i in range(cfg["n_layers"]):
        n = lambda s: f"model.layers.{i}.{s}"
        spec += [(n("input_layernorm.weight"), (C,), "norm"),
                 (n("self_attn.q_proj.weight"), (HD, C), "matrix"),
                 (n("self_attn.k_proj.weight"), (KD, C), "matrix"),
                 (n("self_attn.v_proj.weight"), (KD, C), "matrix")]
        if cfg.get("qkv_bias", False):  # adjacent, as in tandem's layout
            spec += [(n("self_attn.q_proj.bias"), (HD,), "bias"),
                     (n("self_attn.k_proj.bias"), (KD,), "bias"),
                     (n("self_attn.v_proj.bias"), (KD,), "bias")]
        if cfg["qk_norm"]:
            spec += [(n("self_attn.q_norm.weight"), (D,), "norm"),
                     (n("self_attn.k_norm.weight"), (D,), "norm")]
        spec += [(n("self_attn.o_proj.weight"), (C, HD), "matrix"),
                 (n("post_attention_layernorm.weight"), (C,), "norm"),
                 (n("mlp.gate_proj.weight"), (F_, C), "matrix"),
                 (n("mlp.up_proj.weight"), (F_, C), "matrix"),
                 (n("mlp.down_proj.weight"), (C, F_), "matrix")]
    spec.append(("model.norm.weight", (C,), "norm"))
    if not cfg["tie_embeddings"]:
        spec.append(("lm_head.weight", (V, C), "matrix"))
    return spec


def random_params(spec, gen):
    """Values larger than a fresh init so that every nonlinearity is exercised; exact f32."""
    p = {}
    for name, shape, role in spec:
        if role == "norm":
            t = 1.0 + 0.2 * torch.randn(shape, generator=gen, dtype=torch.float64)
        elif role == "bias":
            t = 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
        elif role == "embedding":
            t = 0.5 * torch.randn(shape, generator=gen, dtype=torch.float64)
        else:
            t = torch.randn(shape, generator=gen, dtype=torch.float64) / math.sqrt(shape[-1] if "c_" not in name else shape[0])
        p[name] = t.float().double().requires_grad_(True)
    return p


def make_fixture(name, cfg, spec, forward, seed):
    gen = torch.Generator().manual_seed(seed)
    p = random_params(spec, gen)
    V = cfg["vocab_size"]
    tokens = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)
    targets = torch.roll(tokens, -1, dims=1)
    targets[:, -1] = torch.randint(0, V, (B,), generator=gen)
    targets[0, 3] = IGNORE
    targets[1, 6] = IGNORE

    def loss_fn():
        logits = forward(p, cfg, tokens)
        return logits, F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=IGNORE)

    out = {f"weights/{n}": t.detach().float() for n, t in p.items()}
    logits, loss = loss_fn()
    loss.backward()
    out["tokens"] = tokens.int()
    out["targets"] = targets.int()
    out["logits"] = logits.detach().float()
    out["loss"] = loss.detach().float().reshape(1)
    for n, t in p.items():
        out[f"grads/{n}"] = t.grad.detach().float()

    # AdamW: clip every step with a max norm that binds (a quarter of the first step's norm).
    first_norm = math.sqrt(sum(float((t.grad ** 2).sum()) for t in p.values()))
    grad_clip = float(f"{0.25 * first_norm:.3g}")
    decay = [p[n] for n, _, role in spec if role == "matrix"]
    no_decay = [p[n] for n, _, role in spec if role != "matrix"]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": HP["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=HP["lr"], betas=(HP["beta1"], HP["beta2"]), eps=HP["eps"])
    norms = []
    for _ in range(HP["steps"]):
        opt.zero_grad()
        _, loss = loss_fn()
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(p.values()), grad_clip)))
        opt.step()
    assert all(n > grad_clip for n in norms), ("the clip must bind on every step", norms, grad_clip)
    for n, t in p.items():
        out[f"adamw_step3/{n}"] = t.detach().float()

    save_safetensors(os.path.join(OUT, f"{name}.safetensors"), out)
    meta = {"config": cfg, "batch": B, "seq": T, "ignore_index": IGNORE,
            "adamw": dict(HP, grad_clip=grad_clip), "first_loss": float(out["loss"][0]), "grad_norms_before_clip": norms,
            "torch_version": torch.__version__}
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"{name}: loss {float(out['loss'][0]):.6f}, grad norms {norms}, clip {grad_clip}")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    # tandem's ModelConfig JSON form (model/config.h).
    gpt2 = dict(family="gpt2", n_layers=2, n_heads=4, n_heads_kv=4, d_model=32, head_dim=8,
                d_ffn=128, vocab_size=101, max_seq_len=16, rope_theta=10000.0, norm_eps=1e-5,
                tie_embeddings=True, qk_norm=False)
    qwen3 = dict(family="llama", n_layers=2, n_heads=4, n_heads_kv=2, d_model=32, head_dim=16,
                 d_ffn=48, vocab_size=101, max_seq_len=16, rope_theta=10000.0, norm_eps=1e-6,
                 tie_embeddings=False, qk_norm=True)
    llama3 = dict(family="llama", n_layers=2, n_heads=4, n_heads_kv=2, d_model=32, head_dim=16,
                  d_ffn=48, vocab_size=101, max_seq_len=16, rope_theta=500000.0, norm_eps=1e-5,
                  tie_embeddings=False, qk_norm=False, qkv_bias=False,
                  rope_scaling=dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                    original_max_positions=64))
    # Qwen2's theta is 1e6, but then the slowest pairs of these 8-dim heads turn by 2e-4 rad over
    # the 8 positions: a key bias there shifts every score of a row alike, its exact gradient is
    # ~0 and Adam would normalise each side's rounding noise into a full step. With theta 100
    # every pair turns by at least 0.2 rad, so each element of k_proj.bias matters.
    qwen2 = dict(family="llama", n_layers=2, n_heads=4, n_heads_kv=2, d_model=32, head_dim=8,
                 d_ffn=48, vocab_size=101, max_seq_len=16, rope_theta=100.0, norm_eps=1e-6,
                 tie_embeddings=True, qk_norm=False, qkv_bias=True, rope_scaling=None)
    only = set(sys.argv[1:])  # fixture names to write; all when none are given
    fixtures = [("gpt2_tiny", gpt2, gpt2_params(gpt2), gpt2_forward, 1),
                ("qwen3_tiny", qwen3, llama_params(qwen3), llama_forward, 2),
                ("llama3_tiny", llama3, llama_params(llama3), llama_forward, 3),
                ("qwen2_tiny", qwen2, llama_params(qwen2), llama_forward, 4)]
    for name, cfg, spec, forward, seed in fixtures:
        if not only or name in only:
            make_fixture(name, cfg, spec, forward, seed=seed)


if __name__ == "__main__":
    main()
