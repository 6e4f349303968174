"""Peer side of bench/faithfulness_bench.cpp: deletion/insertion AUC (20
steps, zero baseline), average drop / increase in confidence and, with masks,
the pointing game (15 px), energy-based pointing game and relevance rank
accuracy, two ways:
  batched: the same computation vectorised in torch (every perturbed image of
           a chunk in one forward pass);
  loop:    a per-image loop in the style of Quantus: for each image, for each
           step, perturb that step's pixels (one indexed assignment) and run
           the model on that one image; timed on the first LOOP images and
           reported per image.
usage: faithfulness_bench.py DIR THREADS LOOP
Prints python_batched_s, python_loop_s_per_image and the max abs differences
from gradlens' values.
"""
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from bench_resnet import load_bench_model

d, threads, loop_n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
model = load_bench_model(d)
x = torch.from_numpy(np.load(f"{d}/x.npy"))
maps = torch.from_numpy(np.load(f"{d}/maps.npy"))
targets = torch.from_numpy(np.load(f"{d}/targets.npy"))
try:
    masks = torch.from_numpy(np.load(f"{d}/masks.npy")) > 0
except FileNotFoundError:
    masks = None
n, c, h, w = x.shape
p, steps = h * w, 20
counts = torch.tensor([int(np.floor(s * p / steps + 0.5)) for s in range(steps + 1)])
fr = counts.double() / p


def probs(inp, t):
    with torch.no_grad():
        return torch.softmax(model(inp).double(), 1).gather(1, t.view(-1, 1)).squeeze(1)


def batched():
    order = torch.sort(-maps.reshape(n, p).double(), stable=True, dim=1)[1]
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(p).expand(n, p).contiguous())
    out = {}
    chunk = max(1, 256 // (steps + 1))
    for name, ins in (("deletion", False), ("insertion", True)):
        pr = []
        for i in range(0, n, chunk):
            r = rank[i:i + chunk].view(-1, 1, 1, h, w)
            changed = r < counts.view(1, -1, 1, 1, 1)
            img = x[i:i + chunk].unsqueeze(1)
            base = torch.zeros_like(img)
            pert = torch.where(changed, img, base) if ins else torch.where(changed, base, img)
            m = img.shape[0]
            pr.append(probs(pert.reshape(m * (steps + 1), c, h, w),
                            targets[i:i + chunk].repeat_interleave(steps + 1)).view(m, steps + 1))
        pr = torch.cat(pr)
        out[name] = (((pr[:, 1:] + pr[:, :-1]) / 2) * (fr[1:] - fr[:-1])).sum(1)
    y = torch.cat([probs(x[i:i + 256], targets[i:i + 256]) for i in range(0, n, 256)])
    o = torch.cat([probs(x[i:i + 256] * maps[i:i + 256].unsqueeze(1), targets[i:i + 256]) for i in range(0, n, 256)])
    out["drop"] = (y - o).clamp_min(0) / y
    out["increase"] = (o > y).double()
    if masks is not None:
        flat, k = maps.reshape(n, p).double(), masks.reshape(n, p)
        peak = flat.argmax(1)
        pix = torch.arange(p)
        dy = pix.div(w, rounding_mode="floor").view(1, -1) - peak.div(w, rounding_mode="floor").view(-1, 1)
        dx = (pix % w).view(1, -1) - (peak % w).view(-1, 1)
        out["pointing"] = ((dy * dy + dx * dx <= 15 * 15) & k).any(1).double()
        out["energy"] = (flat * k).sum(1) / flat.sum(1)
        kk = k.sum(1)
        out["rank"] = torch.stack([k[i][order[i, :kk[i]]].double().mean() for i in range(n)])
    return out


def loop(m):
    for i in range(m):
        o = np.argsort(-maps[i].reshape(-1).numpy(), kind="stable")
        for ins in (False, True):
            img = x[i].clone() if not ins else torch.zeros_like(x[i])
            ps = []
            done = 0
            for s in range(steps + 1):
                yy, xx = np.divmod(o[done:int(counts[s])], w)
                img[:, yy, xx] = x[i][:, yy, xx] if ins else 0
                done = int(counts[s])
                ps.append(float(probs(img.unsqueeze(0), targets[i:i + 1])))
            np.trapz(ps, fr.numpy())
        y = float(probs(x[i:i + 1], targets[i:i + 1]))
        float(probs((x[i] * maps[i]).unsqueeze(0), targets[i:i + 1])) - y
        if masks is not None:
            mk = masks[i].numpy()
            py, px = np.unravel_index(np.argmax(maps[i].numpy()), mk.shape)
            ys, xs = np.nonzero(mk)
            np.any((ys - py) ** 2 + (xs - px) ** 2 <= 225)
            (maps[i].numpy()[mk]).sum() / maps[i].numpy().sum()


batched()  # warm-up
t0 = time.perf_counter()
res = batched()
print("python_batched_s", time.perf_counter() - t0)
m = min(loop_n, n)
t0 = time.perf_counter()
loop(m)
print("python_loop_s_per_image", (time.perf_counter() - t0) / m)


def diff(name):
    ours = torch.from_numpy(np.load(f"{d}/ours_{name}.npy"))
    return float((ours - res[name]).abs().max())


print("deletion_max_abs_diff", diff("deletion"))
print("insertion_max_abs_diff", diff("insertion"))
print("drop_max_abs_diff", diff("drop"))
if masks is not None:
    print("localisation_max_abs_diff", max(diff("pointing"), diff("energy"), diff("rank")))
else:
    print("localisation_max_abs_diff", 0.0)
