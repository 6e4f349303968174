"""Peer side of bench/extract_bench.cpp: the same extraction in Python torch.

usage: extract_bench.py DIR THREADS BATCH [shared]
DIR holds x.npy [N,1,28,28] float32 (normalised), y.npy, and the weights of the
gradlens ResNet18 (small stem, width 16) as DIR/params/<name>.npy. Builds the
same network (torchvision's layout with a width option), loads the weights by
name, checks the logits against DIR/logits.npy, and times two ways of
computing every representation (gradcam-weights pred at layer4, input-grad
pred, param-grad pred of fc, features, activations, logits, probs):
  shared:   one forward + 2 backward passes per batch (what gradlens does)
  separate: a forward (+ backward) per representation, as separate scripts do
With a 4th argument "shared", times the shared passes only. Prints
"python_shared_s S", "python_separate_s S" (unless "shared"), and, for the
outputs against DIR/ours_<name>.npy, "rel_diff_<name> D" (relative L2 norm of
the difference) and their maximum "max_rel_diff D".
"""
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from bench_resnet import load_small_resnet18, shared_passes

d, threads, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
only_shared = len(sys.argv) > 4 and sys.argv[4] == "shared"
torch.set_num_threads(threads)


model = load_small_resnet18(d)
x = torch.from_numpy(np.load(f"{d}/x.npy"))
n = x.shape[0]
with torch.no_grad():
    ref = torch.from_numpy(np.load(f"{d}/logits.npy"))
    print("logits_max_abs_diff", float((model(x) - ref).abs().max()))


def head_param_grad(f, z, lab):
    delta = torch.softmax(z, 1) - F.one_hot(lab, z.shape[1]).to(z.dtype)
    return torch.cat([(delta[:, :, None] * f[:, None, :]).flatten(1), delta], 1)


def shared():
    return shared_passes(model, x, batch)


def separate():
    outs = {}
    for s in range(0, n, batch):
        xb = x[s:s + batch]
        with torch.no_grad():  # features, activations, logits, probs
            a = model.body(xb)
            f = a.mean((2, 3))
            z = model.fc(f)
            outs.setdefault("features", []).append(f)
            outs.setdefault("activations", []).append(a.flatten(1))
            outs.setdefault("logits", []).append(z)
            outs.setdefault("probs", []).append(torch.softmax(z, 1))
        a = model.body(xb)  # Grad-CAM: its own forward + backward
        a.retain_grad()
        z = model.fc(a.mean((2, 3)))
        z.gather(1, z.argmax(1, keepdim=True)).sum().backward()
        outs.setdefault("gradcam-weights", []).append(a.grad.mean((2, 3)))
        model.zero_grad()
        xg = xb.clone().requires_grad_(True)  # input gradient: its own pass
        z = model(xg)
        F.cross_entropy(z, z.argmax(1), reduction="sum").backward()
        outs.setdefault("input-grad", []).append(xg.grad.flatten(1))
        model.zero_grad()
        with torch.no_grad():  # gradient embedding: its own forward
            f = model.body(xb).mean((2, 3))
            z = model.fc(f)
            outs.setdefault("param-grad", []).append(head_param_grad(f, z, z.argmax(1)))
    return {k: torch.cat(v) for k, v in outs.items()}


t0 = time.perf_counter()
for s in range(0, n, batch):
    model(x[s:s + batch].clone().requires_grad_(True))
print(f"python_forward_s {time.perf_counter() - t0:.4f}")
for name, fn in (("shared", shared),) + ((("separate", separate),) if not only_shared else ()):
    fn()  # warm-up
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    print(f"python_{name}_s {dt:.4f}")
worst = 0.0
for k, v in out.items():
    ours = torch.from_numpy(np.load(f"{d}/ours_{k}.npy"))
    # Relative Frobenius norm: an input gradient jumps where a ReLU input
    # sits within float rounding of zero, so single entries may differ by
    # more than rounding between two correct computations (e.g. NCHW against
    # channels-last, or BN folded), while the whole matrix agrees closely.
    rel = float((ours - v).norm() / v.norm())
    print(f"rel_diff_{k} {rel:.3g}")
    worst = max(worst, rel)
print(f"max_rel_diff {worst:.3g}")
