#!/usr/bin/env python3
"""PyTorch peer of dppa's speed benchmark: mergekit's math on the bench's raw bf16 data.

usage: torch_peer.py DIR N K DENSITY THREADS REPS
DIR holds base.bin, ft0.bin ... ft{K-1}.bin: N little-endian bf16 values each. Prints one JSON
object: the torch version, threads, and the best wall time (seconds) of each merge, from the
loaded bf16 tensors to the bf16 result. The math is mergekit's, flattened per tensor:
float32 upcast, delta = ft - base, TIES trim by argsort (exactly int(density * n) kept),
sign election by the sign of the summed weighted deltas (0 counts as +), the disjoint mean
(divisor below 1e-8 set to 1), base + lambda * mixed, cast back to bf16.
"""
import json
import os
import sys
import time

import torch


def load(path, n):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    t = torch.frombuffer(data, dtype=torch.bfloat16)
    assert t.numel() == n, f"{path}: {t.numel()} values, expected {n}"
    return t


def trim(delta, density):
    k = int(density * delta.numel())
    magnitudes = delta.abs().view(-1).float()
    order = torch.argsort(magnitudes, descending=True)[:k]
    mask = torch.zeros_like(delta)
    mask.view(-1)[order] = 1
    return delta * mask


def ties(base, fts, density, weights, lam=1.0):
    b = base.float()
    deltas = torch.stack([trim(ft.float() - b, density) for ft in fts], dim=0)
    w = torch.tensor(weights, dtype=torch.float32).view(-1, 1)
    weighted = deltas * w
    majority = torch.where(weighted.sum(dim=0) >= 0, 1.0, -1.0)
    agree = weighted.sign() == majority
    mixed = (weighted * agree).sum(dim=0)
    divisor = (w * agree).sum(dim=0)
    divisor[divisor.abs() < 1e-8] = 1
    mixed = mixed / divisor
    return (b + lam * mixed).to(torch.bfloat16)


def task_arithmetic(base, fts, weights, lam=1.0):
    b = base.float()
    deltas = torch.stack([ft.float() - b for ft in fts], dim=0)
    w = torch.tensor(weights, dtype=torch.float32).view(-1, 1)
    mixed = (deltas * w).sum(dim=0)
    return (b + lam * mixed).to(torch.bfloat16)


def best_time(fn, reps):
    fn()  # warm-up
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    folder, n, k, density, threads, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    torch.set_num_threads(threads)
    base = load(os.path.join(folder, "base.bin"), n)
    fts = [load(os.path.join(folder, f"ft{i}.bin"), n) for i in range(k)]
    weights = [1.0] * k
    result = {
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "n": n,
        "task_arithmetic_seconds": best_time(lambda: task_arithmetic(base, fts, weights), reps),
        "ties_seconds": best_time(lambda: ties(base, fts, density, weights), reps),
    }
    out = ties(base, fts, density, weights)
    result["ties_checksum"] = float(out.float().abs().sum())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
