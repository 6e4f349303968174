"""Writes torchvision classifiers (seeded random weights, 64 px, 10 classes),
scripted and traced, and the reference values pytorch-grad-cam's code path
gives at the `features` layer: a forward hook keeps the layer's output, the
gradient of the predicted class's logit w.r.t. it gives the Grad-CAM channel
weights (spatial mean). Also the features before the last Linear.

usage: torchvision_capture_reference.py OUT_DIR
"""
import sys

import torch
import torchvision

out = sys.argv[1]
torch.manual_seed(0)
for name in ["mobilenet_v2", "vgg11_bn", "densenet121"]:
    m = getattr(torchvision.models, name)(num_classes=10).eval()
    x = torch.randn(3, 3, 64, 64)
    torch.jit.save(torch.jit.script(m), f"{out}/{name}.pt")
    torch.jit.save(torch.jit.trace(m, x), f"{out}/{name}.traced.pt")
    head = [mod for mod in m.modules() if isinstance(mod, torch.nn.Linear)][-1]
    kept = {}
    h1 = m.features.register_forward_hook(lambda mod, i, o: kept.__setitem__("maps", o))
    h2 = head.register_forward_hook(lambda mod, i, o: kept.__setitem__("feats", i[0]))
    z = m(x)
    h1.remove()
    h2.remove()
    cls = z.argmax(1)
    g = torch.autograd.grad(z.gather(1, cls[:, None]).sum(), kept["maps"])[0]

    class Ref(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.x = x
            self.logits = z.detach()
            self.maps = kept["maps"].detach()
            self.weights = g.mean((2, 3))
            self.features = kept["feats"].detach()

    torch.jit.save(torch.jit.script(Ref()), f"{out}/{name}.ref.pt")
