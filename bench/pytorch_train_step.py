#!/usr/bin/python3
"""The PyTorch side of bench/train_step_bench.cpp: the same training step (forward with mean
cross-entropy, backward, clip_grad_norm_(1.0), AdamW with weight decay on matrix weights) on the
same shapes, with the same math as the parity fixtures (tests/interop/make_torch_fixtures.py,
imported from there), in fp32 on the CPU. Prints tokens/s as the median of --steps steps after
--warmup, with min and max, in the same RESULT line format.

    OMP_NUM_THREADS=2 /usr/bin/python3 bench/pytorch_train_step.py [--model llama-15m|gpt2-124m|all]
        [--batch B] [--seq T] [--lockstep IN_FIFO OUT_FIFO]

--lockstep takes turns with train_step_bench one step at a time (see bench/run_train_step.sh).

The RESULT line ends with the process's peak resident memory (getrusage, MiB) and the label
names the settings that change PyTorch's speed here: "-tcmalloc" when LD_PRELOAD has tcmalloc,
"-<core>" when OPENBLAS_CORETYPE forces OpenBLAS's kernels (PyTorch loads Debian's OpenBLAS
through libblas.so.3 and inherits the variable; unset, OpenBLAS picks the CPU's best kernels).
"""
import argparse
import math
import ctypes
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "interop"))
import make_torch_fixtures as ref  # noqa: E402

# tandem's presets (src/model/config.cpp), in the fixture script's config form.
PRESETS = {
    "llama-15m": dict(family="llama", n_layers=6, n_heads=6, n_heads_kv=6, d_model=288,
                      head_dim=48, d_ffn=768, vocab_size=32000, max_seq_len=256,
                      rope_theta=10000.0, norm_eps=1e-5, tie_embeddings=True, qk_norm=False),
    "gpt2-124m": dict(family="gpt2", n_layers=12, n_heads=12, n_heads_kv=12, d_model=768,
                      head_dim=64, d_ffn=3072, vocab_size=50257, max_seq_len=1024,
                      rope_theta=10000.0, norm_eps=1e-5, tie_embeddings=True, qk_norm=False),
}
SHAPES = {"llama-15m": (8, 256), "gpt2-124m": (4, 64)}


def openblas_core():
    """The kernel family of the OpenBLAS that this process loaded (through torch), if any."""
    try:  # torch loads it privately through libblas.so.3: find it in our own mappings
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libopenblas" in line}
        for path in paths:
            lib = ctypes.CDLL(path)  # already loaded: the same handle, no second init
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib.openblas_get_corename().decode()
    except (AttributeError, OSError):
        pass
    return "unknown"


def cpu_share():
    """(busy, total) seconds of all CPUs from /proc/stat, and this process's CPU seconds."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    tick = 1.0 / os.sysconf("SC_CLK_TCK")
    total = sum(v) * tick
    t = os.times()
    return total - (v[3] + v[4]) * tick, total, t.user + t.system


def others_percent(start, end):
    """Percent of the CPUs' time that other processes used between two cpu_share() samples."""
    total = end[1] - start[1]
    if total <= 0:
        return 0.0
    return max(0.0, 100.0 * ((end[0] - start[0]) - (end[2] - start[2])) / total)


class Lockstep:
    """Waits for a byte on one fifo before each step and writes one to the other after it."""

    def __init__(self, fifos):
        self.fds = [os.open(f, os.O_RDWR) for f in fifos] if fifos else None

    def wait_turn(self):
        if self.fds:
            os.read(self.fds[0], 1)

    def pass_turn(self):
        if self.fds:
            os.write(self.fds[1], b"s")


def run(name, steps, warmup, threads, batch=0, seq=0, lockstep=Lockstep(None)):
    cfg = PRESETS[name]
    B, T = SHAPES[name]
    B, T = batch or B, seq or T
    spec = ref.gpt2_params(cfg) if cfg["family"] == "gpt2" else ref.qwen3_params(cfg)
    forward = ref.gpt2_forward if cfg["family"] == "gpt2" else ref.qwen3_forward
    gen = torch.Generator().manual_seed(1)
    p = {}
    for pname, shape, role in spec:  # the init does not matter for the timing
        t = torch.ones(shape) if role == "norm" else 0.02 * torch.randn(shape, generator=gen)
        p[pname] = t.float().requires_grad_(True)
    decay = [p[n] for n, _, role in spec if role == "matrix"]
    no_decay = [p[n] for n, _, role in spec if role != "matrix"]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    V = cfg["vocab_size"]
    idx = torch.arange(B * T)
    tokens = ((idx * 7919 + 13) % V).view(B, T)
    targets = ((idx * 104729 + 5) % V).view(B, T)
    n_params = sum(t.numel() for t in p.values())
    print(f"# {name} in torch {torch.__version__}: {n_params} params, B={B} T={T}, "
          f"threads {threads}, LD_PRELOAD={os.environ.get('LD_PRELOAD', '')}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}, "
          f"OpenBLAS core {openblas_core()}", flush=True)
    times = []
    for i in range(warmup + steps):
        lockstep.wait_turn()
        cpu_start = cpu_share()
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = forward(p, cfg, tokens)
        loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(p.values()), 1.0)
        opt.step()
        s = time.perf_counter() - start
        if i >= warmup:
            times.append(s)
        others = others_percent(cpu_start, cpu_share())
        print(f"  step {i}: {s:.3f} s, loss {loss.item():.4f}, others {others:.0f}%",
              file=sys.stderr, flush=True)
        lockstep.pass_turn()
    med, lo, hi = statistics.median(times), min(times), max(times)
    label = "pytorch-tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "") else "pytorch"
    if os.environ.get("OPENBLAS_CORETYPE"):
        label += "-" + os.environ["OPENBLAS_CORETYPE"].lower()
    maxrss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RESULT {label} {name} B={B} T={T} tok/s median {B * T / med:.1f} min {B * T / hi:.1f} "
          f"max {B * T / lo:.1f} (step {med:.3f} s, {steps} steps) maxrss_mib {maxrss_mib:.0f}",
          flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="all", choices=["all", *PRESETS])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=0, help="default: the model's shape of the issue")
    ap.add_argument("--seq", type=int, default=0)
    ap.add_argument("--lockstep", nargs=2, metavar=("IN_FIFO", "OUT_FIFO"))
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lockstep = Lockstep(args.lockstep)
    for name in PRESETS:
        if args.model in ("all", name):
            run(name, args.steps, args.warmup, args.threads, args.batch, args.seq, lockstep)


if __name__ == "__main__":
    main()
