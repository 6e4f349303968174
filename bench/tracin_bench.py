"""The Python torch side of bench/tracin_bench.cpp: TracIn-CP with per-sample
gradients of fc and layer4.1.conv2 from functorch's vmap(grad(...)) (as TRAK
computes them), layer4.1.conv2's projected as P_out G P_in^T with the
factors the C++ side wrote, fc's kept whole; scores = sum_t eta_t Q T^T, and
the top-10 proponents per query.

usage: tracin_bench.py DIR THREADS CHECKPOINTS   (prints "key value" lines)
"""
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from functorch import grad, vmap
from torch.nn.utils.stateless import functional_call

from bench_resnet import ResNet18, load_params

d, threads, n_ckpt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
load = lambda name: torch.from_numpy(np.load(f"{d}/{name}.npy"))
train_x, train_y = load("train_x"), load("train_y")
query_x, query_y = load("query_x"), load("query_y")
p_out, p_in, eta = load("p_out"), load("p_in"), load("eta")
NAMES = ["fc.weight", "fc.bias", "layer4.1.conv2.weight"]


def factors(model, x, y, batch=100):
    params = {k: v.detach() for k, v in model.named_parameters() if k in NAMES}
    rest = {k: v.detach() for k, v in model.named_parameters() if k not in NAMES}
    rest.update({k: v for k, v in model.named_buffers()})

    def loss(p, xi, yi):
        out = functional_call(model, {**rest, **p}, (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))
    rows = []
    for s in range(0, x.size(0), batch):
        g = per_sample(params, x[s:s + batch], y[s:s + batch])
        b = g["fc.weight"].size(0)
        head = torch.cat([g["fc.weight"].reshape(b, -1), g["fc.bias"]], 1)
        conv = g["layer4.1.conv2.weight"].reshape(b, p_out.size(1), -1)  # [B, Cout, Cin*9]
        proj = torch.matmul(torch.matmul(p_out, conv), p_in.t()).reshape(b, -1)
        rows.append(torch.cat([head, proj], 1))
    return torch.cat(rows)


t0 = time.perf_counter()
scores = torch.zeros(query_x.size(0), train_x.size(0), dtype=torch.float64)
for t in range(n_ckpt):
    model = load_params(ResNet18(), f"{d}/ckpt{t}")
    with torch.no_grad():
        tf = factors(model, train_x, train_y)
        qf = factors(model, query_x, query_y)
    scores += float(eta[t]) * (qf @ tf.t()).double()
top = scores.topk(10, dim=1).indices
elapsed = time.perf_counter() - t0
print("python_s", elapsed)
ours = load("ours_scores")
k = ours.size(0)
print("scores_max_rel_diff", float(((scores[:k] - ours).abs().max() / ours.abs().max())))
print("top10_equal", float((top == load("ours_top")).all(1).double().mean()))
