"""numpy re-implementation, image by image and step by step as Quantus and
the papers describe them, of gradlens' faithfulness and localisation metrics
(src/gradlens/saliency/faithfulness.h, localisation.h), for a linear softmax
model logits = flatten(x) @ W.T + b.

usage: faithfulness_reference.py DIR   (reads images, maps, masks, targets,
W, b .npy from DIR; writes ref_*.npy there)
"""
import os
import sys

import numpy as np

d = sys.argv[1]
load = lambda n: np.load(os.path.join(d, n + ".npy"))
images, maps, masks, targets, W, b = (load(n) for n in ("images", "maps", "masks", "targets", "W", "b"))
steps, sigma = 7, 1.0
N, C, H, Wd = images.shape
P = H * Wd


def prob(x, t):
    z = x.reshape(-1) @ W.T + b
    e = np.exp(z - z.max())
    return (e / e.sum())[t]


def blur(img):
    r = max(1, min(int(np.ceil(3 * sigma)), min(H, Wd) - 1))
    g = np.exp(-np.arange(-r, r + 1) ** 2 / (2 * sigma ** 2))
    g /= g.sum()
    out = np.empty_like(img)
    for c in range(C):
        a = np.pad(img[c], ((0, 0), (r, r)), mode="reflect")
        a = np.array([[np.dot(a[y, x:x + 2 * r + 1], g) for x in range(Wd)] for y in range(H)])
        a = np.pad(a, ((r, r), (0, 0)), mode="reflect")
        out[c] = np.array([[np.dot(a[y:y + 2 * r + 1, x], g) for x in range(Wd)] for y in range(H)])
    return out


def baseline(img, kind):
    if kind == "zero":
        return np.zeros_like(img)
    if kind == "mean":
        return np.broadcast_to(img.mean(axis=(1, 2), keepdims=True), img.shape).copy()
    return blur(img)


def curve(i, kind, insertion):
    order = np.argsort(-maps[i].reshape(-1), kind="stable")
    base = baseline(images[i], kind)
    x = base.copy() if insertion else images[i].copy()
    fr, ps = [], []
    done = 0
    for s in range(steps + 1):
        count = int(np.floor(s * P / steps + 0.5))
        for q in order[done:count]:
            y, xx = divmod(int(q), Wd)
            x[:, y, xx] = images[i][:, y, xx] if insertion else base[:, y, xx]
        done = count
        fr.append(count / P)
        ps.append(prob(x, targets[i]))
    fr, ps = np.array(fr), np.array(ps)
    return ps, np.trapz(ps, fr)


for kind in ("zero", "mean", "blur"):
    for name, ins in (("deletion", False), ("insertion", True)):
        res = [curve(i, kind, ins) for i in range(N)]
        np.save(os.path.join(d, f"ref_{name}_{kind}_probs.npy"), np.stack([r[0] for r in res]))
        np.save(os.path.join(d, f"ref_{name}_{kind}_auc.npy"), np.array([r[1] for r in res]))

def region_curve(i, kind, insertion, ps):
    """Region perturbation (Samek et al. 2017): ps x ps patches of a grid,
    ordered by the sum of the map over each, perturbed patch by patch."""
    patches = [(py, px) for py in range(0, H, ps) for px in range(0, Wd, ps)]
    relevance = np.array([maps[i][py:py + ps, px:px + ps].sum() for py, px in patches])
    order = np.argsort(-relevance, kind="stable")
    base = baseline(images[i], kind)
    x = base.copy() if insertion else images[i].copy()
    fr, ps_ = [], []
    done, U = 0, len(patches)
    for s in range(steps + 1):
        count = int(np.floor(s * U / steps + 0.5))
        for q in order[done:count]:
            py, px = patches[q]
            src = images[i] if insertion else base
            x[:, py:py + ps, px:px + ps] = src[:, py:py + ps, px:px + ps]
        done = count
        fr.append(count / U)
        ps_.append(prob(x, targets[i]))
    fr, ps_ = np.array(fr), np.array(ps_)
    return ps_, np.trapz(ps_, fr)


for kind in ("zero", "mean"):
    for name, ins in (("deletion", False), ("insertion", True)):
        res = [region_curve(i, kind, ins, 2) for i in range(N)]
        np.save(os.path.join(d, f"ref_{name}_patch2_{kind}_probs.npy"), np.stack([r[0] for r in res]))
        np.save(os.path.join(d, f"ref_{name}_patch2_{kind}_auc.npy"), np.array([r[1] for r in res]))

Y = np.array([prob(images[i], targets[i]) for i in range(N)])
O = np.array([prob(images[i] * maps[i][None], targets[i]) for i in range(N)])
np.save(os.path.join(d, "ref_drop.npy"), np.maximum(0, Y - O) / Y)
np.save(os.path.join(d, "ref_increase.npy"), (O > Y).astype(np.float64))

TOLERANCES = (0.0, 1.0, 1.5, 2.0, 3.0)
point, energy, rank = [], [], []
for i in range(N):
    m, k = maps[i], masks[i] > 0
    if not k.any():
        point.append([np.nan] * len(TOLERANCES)), energy.append(np.nan), rank.append(np.nan)
        continue
    py, px = np.unravel_index(np.argmax(m), m.shape)
    ys, xs = np.nonzero(k)
    point.append([float(np.any((ys - py) ** 2 + (xs - px) ** 2 <= t * t)) for t in TOLERANCES])
    energy.append(m[k].sum() / m.sum() if m.sum() > 0 else np.nan)
    K = int(k.sum())
    top = np.argsort(-m.reshape(-1), kind="stable")[:K]
    rank.append(k.reshape(-1)[top].sum() / K)
np.save(os.path.join(d, "ref_pointing.npy"), np.ascontiguousarray(np.array(point).T))  # [tolerance, N]
np.save(os.path.join(d, "ref_energy.npy"), np.array(energy))
np.save(os.path.join(d, "ref_rank.npy"), np.array(rank))
