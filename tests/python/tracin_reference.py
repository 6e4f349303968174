"""Reference values for tests/influence/tracin_peer_test.cpp (Debian's
python3-torch): TracIn-CP of a small CNN's final linear layer written out
by hand, as Pruthi et al. define it, with per-sample gradients from
autograd (one backward pass per image, as Captum's TracInCP does without
its batching tricks).

A 4-class CNN is trained by SGD for three short phases; after each phase
its weights are saved as TorchScript (OUT/ckpt<t>.pt, t = 0, 1, 2) with the
phase's learning rate eta_t. Written: train_images.npy (uint8 [30, 1, 12,
12]), train_labels.npy, query_images.npy (uint8 [5, 1, 12, 12]),
query_labels.npy, eta.npy, and
  scores.npy  [5, 30]  sum_t eta_t <dCE(q)/dθ_t, dCE(i)/dθ_t>, θ = (fc.weight, fc.bias)
  cosine.npy  [5, 30]  the same with each term divided by the two gradient norms
  self.npy    [30]     sum_t eta_t ||dCE(i)/dθ_t||^2
Inputs are normalised as gradlens does: (x / 255 - 0.5) / 0.25.

usage: tracin_reference.py OUT_DIR
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F

out = sys.argv[1]
torch.manual_seed(0)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 6, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(6, 8, 3, stride=2, padding=1), torch.nn.ReLU())
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def normalise(u8):
    return (torch.from_numpy(u8).float() / 255 - 0.5) / 0.25


train_u8 = torch.randint(0, 256, (30, 1, 12, 12), dtype=torch.uint8).numpy()
train_y = (torch.arange(30) % 4).numpy().astype(np.int64)
query_u8 = torch.randint(0, 256, (5, 1, 12, 12), dtype=torch.uint8).numpy()
query_y = np.array([0, 1, 2, 3, 1], dtype=np.int64)
for name, a in [("train_images", train_u8), ("train_labels", train_y), ("query_images", query_u8),
                ("query_labels", query_y)]:
    np.save(f"{out}/{name}.npy", a)

x, y = normalise(train_u8), torch.from_numpy(train_y)
xq, yq = normalise(query_u8), torch.from_numpy(query_y)
model = Net()
eta = [0.2, 0.1, 0.05]
np.save(f"{out}/eta.npy", np.array(eta))


def per_sample_grads(images, labels):
    rows = []
    for i in range(images.size(0)):
        model.zero_grad()
        loss = F.cross_entropy(model(images[i:i + 1]), labels[i:i + 1])
        loss.backward()
        rows.append(torch.cat([model.fc.weight.grad.flatten(), model.fc.bias.grad]).double().clone())
    return torch.stack(rows)


scores = torch.zeros(5, 30, dtype=torch.float64)
cosine = torch.zeros(5, 30, dtype=torch.float64)
self_inf = torch.zeros(30, dtype=torch.float64)
for t, lr in enumerate(eta):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for step in range(5):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    torch.jit.save(torch.jit.script(model), f"{out}/ckpt{t}.pt")
    g = per_sample_grads(x, y)
    gq = per_sample_grads(xq, yq)
    scores += lr * gq @ g.T
    cosine += lr * (gq / gq.norm(dim=1, keepdim=True)) @ (g / g.norm(dim=1, keepdim=True)).T
    self_inf += lr * (g * g).sum(1)
    model.train()

np.save(f"{out}/scores.npy", scores.numpy())
np.save(f"{out}/cosine.npy", cosine.numpy())
np.save(f"{out}/self.npy", self_inf.numpy())
