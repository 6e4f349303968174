"""Peer side of bench/road_bench.cpp: ROAD as pytorch-grad-cam computes it
(metrics/road.py): for every image and removal fraction, the linear
imputation's sparse system set up from the 8 neighbour offsets (weights 1/6
and 1/12) and solved with scipy.sparse.linalg.spsolve; the imputed images of
a fraction go through the model in one batch. Noise 0. Timed on the first
LOOP images.
usage: road_bench.py DIR THREADS LOOP
Prints python_s_per_image and max_abs_diff (against gradlens' ours_morf.npy,
ours_lerf.npy on the timed images).
"""
import sys
import time

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch

from bench_resnet import load_bench_model

d, threads, loop_n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
model = load_bench_model(d)
x = torch.from_numpy(np.load(f"{d}/x.npy"))
maps = np.load(f"{d}/maps.npy")
targets = torch.from_numpy(np.load(f"{d}/targets.npy"))
n, c, h, w = x.shape
p = h * w
fractions = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
OFFSETS = [(dy, dx, 1 / 6 if dy == 0 or dx == 0 else 1 / 12)
           for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def impute(img, removed):
    """img (C, H, W) numpy, removed (H*W,) bool: the vectorised set-up of
    pytorch-grad-cam's NoisyLinearImputer, then spsolve."""
    flat = img.reshape(c, -1)
    idx = np.flatnonzero(removed)
    var = np.full(p, -1)
    var[idx] = np.arange(len(idx))
    rows, cols, vals = [], [], []
    rhs = np.zeros((len(idx), c))
    diag = np.zeros(len(idx))
    y0, x0 = np.divmod(idx, w)
    for dy, dx, wt in OFFSETS:
        yy, xx = y0 + dy, x0 + dx
        ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        diag[ok] += wt
        q = yy[ok] * w + xx[ok]
        unknown = var[q] >= 0
        i_ok = np.flatnonzero(ok)
        rows.append(i_ok[unknown])
        cols.append(var[q[unknown]])
        vals.append(np.full(unknown.sum(), -wt))
        rhs[i_ok[~unknown]] += wt * flat[:, q[~unknown]].T
    rows.append(np.arange(len(idx)))
    cols.append(np.arange(len(idx)))
    vals.append(diag)
    a = scipy.sparse.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                shape=(len(idx), len(idx)))
    sol = scipy.sparse.linalg.spsolve(a, rhs).reshape(len(idx), c)
    out = flat.copy()
    out[:, idx] = sol.T
    return out.reshape(c, h, w)


def road(m):
    res = np.zeros((m, 2, len(fractions)))
    orders = [(np.argsort(-maps[i].reshape(-1), kind="stable"), np.argsort(maps[i].reshape(-1), kind="stable"))
              for i in range(m)]
    for o in range(2):
        for j, f in enumerate(fractions):
            k = int(np.floor(f * p + 0.5))
            batch = []
            for i in range(m):
                removed = np.zeros(p, bool)
                removed[orders[i][o][:k]] = True
                batch.append(impute(x[i].double().numpy(), removed))
            with torch.no_grad():
                z = model(torch.from_numpy(np.stack(batch)).float())
            res[:, o, j] = torch.softmax(z.double(), 1).gather(1, targets[:m].view(-1, 1)).squeeze(1).numpy()
    return res


m = min(loop_n, n)
road(min(m, 2))  # warm-up
t0 = time.perf_counter()
res = road(m)
print("python_s_per_image", (time.perf_counter() - t0) / m)
ours = np.stack([np.load(f"{d}/ours_morf.npy")[:m], np.load(f"{d}/ours_lerf.npy")[:m]], 1)
print("max_abs_diff", float(np.abs(ours - res).max()))
