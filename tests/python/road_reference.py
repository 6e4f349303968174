"""ROAD's noisy linear imputation (Rong et al. 2022) without the noise, set
up pixel by pixel as the paper defines it and solved with scipy's sparse
direct solver, and ROAD's MoRF/LeRF probabilities of a linear softmax model,
for tests/saliency/road_peer_test.cpp.

usage: road_reference.py DIR   (reads images, maps, targets, W, b, fractions
.npy from DIR; writes ref_*.npy there)
"""
import os
import sys

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

d = sys.argv[1]
load = lambda n: np.load(os.path.join(d, n + ".npy"))
images, maps, targets, W, b, fractions = (load(n) for n in ("images", "maps", "targets", "W", "b", "fractions"))
N, C, H, Wd = images.shape
P = H * Wd
# (dy, dx, weight): 1/6 for the direct, 1/12 for the diagonal neighbours.
NEIGHBOURS = [(dy, dx, 1 / 6 if dy == 0 or dx == 0 else 1 / 12)
              for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def impute(img, removed):
    """Each removed pixel = the weighted mean of its in-image neighbours."""
    idx = {q: i for i, q in enumerate(np.flatnonzero(removed.reshape(-1)))}
    m = len(idx)
    A = scipy.sparse.lil_matrix((m, m))
    rhs = np.zeros((m, C))
    for q, i in idx.items():
        y, x = divmod(q, Wd)
        total = 0.0
        for dy, dx, w in NEIGHBOURS:
            yy, xx = y + dy, x + dx
            if not (0 <= yy < H and 0 <= xx < Wd):
                continue
            total += w
            r = yy * Wd + xx
            if r in idx:
                A[i, idx[r]] -= w
            else:
                rhs[i] += w * img[:, yy, xx]
        A[i, i] += total
    sol = scipy.sparse.linalg.spsolve(A.tocsc(), rhs).reshape(m, C)
    out = img.copy().reshape(C, P)
    for q, i in idx.items():
        out[:, q] = sol[i]
    return out.reshape(C, H, Wd)


def prob(x, t):
    z = x.reshape(-1) @ W.T + b
    e = np.exp(z - z.max())
    return (e / e.sum())[t]


morf = np.zeros((N, len(fractions)))
lerf = np.zeros((N, len(fractions)))
for n in range(N):
    flat = maps[n].reshape(-1)
    orders = (np.argsort(-flat, kind="stable"), np.argsort(flat, kind="stable"))
    for o, out in enumerate((morf, lerf)):
        for j, f in enumerate(fractions):
            removed = np.zeros(P, bool)
            removed[orders[o][:int(np.floor(f * P + 0.5))]] = True
            out[n, j] = prob(impute(images[n], removed.reshape(H, Wd)), targets[n])
np.save(os.path.join(d, "ref_morf.npy"), morf)
np.save(os.path.join(d, "ref_lerf.npy"), lerf)
# One imputation on its own: the first image, a scattered and a blocky hole.
removed = np.zeros((2, H, Wd), bool)
removed[0].reshape(-1)[::3] = True
removed[1, 1:H - 2, 2:Wd - 1] = True
np.save(os.path.join(d, "removed.npy"), removed.astype(np.uint8))
np.save(os.path.join(d, "ref_imputed.npy"), np.stack([impute(images[0], removed[k]) for k in range(2)]))
