"""Reference for tests/hessian/torchscript_hessian_peer_test.cpp: the loss
Hessian of a scripted CNN (not a ResNet) in Python torch.

usage: hessian_torchscript_reference.py OUT_DIR
Writes OUT_DIR/model.pt (conv 3->4, tanh, conv 4->6 stride 2, tanh, global
average pool, Linear 6->5; seeded), x.npy [8, 3, 12, 12], y.npy [8], and
hessian.npy: the Hessian of the mean cross-entropy w.r.t. features.2.weight,
fc.weight and fc.bias (flattened in that order, 251 x 251), one double
backward pass per row.
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
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Tanh(),
                                            torch.nn.Conv2d(4, 6, 3, stride=2), torch.nn.Tanh())
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(6, 5)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


net = Net().eval()
torch.jit.save(torch.jit.script(net), f"{out}/model.pt")
x = torch.randn(8, 3, 12, 12)
y = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
np.save(f"{out}/x.npy", x.numpy())
np.save(f"{out}/y.npy", y.numpy())
params = [net.features[2].weight, net.fc.weight, net.fc.bias]
loss = F.cross_entropy(net(x), y)
g = torch.cat([t.flatten() for t in torch.autograd.grad(loss, params, create_graph=True)])
rows = [torch.cat([t.flatten() for t in torch.autograd.grad(g[i], params, retain_graph=True)]) for i in range(len(g))]
np.save(f"{out}/hessian.npy", torch.stack(rows).double().numpy())
