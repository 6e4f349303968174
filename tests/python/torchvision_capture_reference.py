"""Writes torchvision classifiers (seeded random weights, 64 px, 10 classes),
scripted and traced, and the reference values pytorch-grad-cam's code path
gives at the `features` layer: a forward hook keeps the layer's output, the
gradient of the predicted class's logit w.r.t. it gives the Grad-CAM channel
weights (spatial mean). The same at an inner layer (INNER below: one called
inside an `if`, one through an overloaded forward), the features before the
last Linear, and every module's output shape (NAME.shapes.txt, as torchinfo
lists them: "name d1 d2 ..." for each module whose output is a tensor).

usage: torchvision_capture_reference.py OUT_DIR
"""
import sys

import torch
import torchvision

INNER = {
    "mobilenet_v2": "features.3.conv",  # in InvertedResidual's `if self.use_res_connect`
    "vgg11_bn": "features.10",
    "densenet121": "features.denseblock2.denselayer3",  # forward__0, an overload
}

out = sys.argv[1]
torch.manual_seed(0)
for name in ["mobilenet_v2", "vgg11_bn", "densenet121"]:
    m = getattr(torchvision.models, name)(num_classes=10).eval()
    x = torch.randn(3, 3, 64, 64)
    torch.jit.save(torch.jit.script(m), f"{out}/{name}.pt")
    torch.jit.save(torch.jit.trace(m, x), f"{out}/{name}.traced.pt")
    head = [mod for mod in m.modules() if isinstance(mod, torch.nn.Linear)][-1]
    kept = {}
    shapes = {}
    hooks = [
        m.features.register_forward_hook(lambda mod, i, o: kept.__setitem__("maps", o)),
        m.get_submodule(INNER[name]).register_forward_hook(lambda mod, i, o: kept.__setitem__("inner", o)),
        head.register_forward_hook(lambda mod, i, o: kept.__setitem__("feats", i[0])),
    ]
    for mod_name, mod in m.named_modules():
        if mod_name:
            hooks.append(mod.register_forward_hook(
                lambda mod, i, o, n=mod_name: shapes.__setitem__(n, list(o.shape))
                if isinstance(o, torch.Tensor) else None))
    z = m(x)
    for h in hooks:
        h.remove()
    cls = z.argmax(1)
    g, gi = torch.autograd.grad(z.gather(1, cls[:, None]).sum(), [kept["maps"], kept["inner"]])
    with open(f"{out}/{name}.shapes.txt", "w") as f:
        for mod_name, shape in shapes.items():
            f.write(mod_name + " " + " ".join(map(str, shape)) + "\n")

    class Ref(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.x = x
            self.logits = z.detach()
            self.maps = kept["maps"].detach()
            self.weights = g.mean((2, 3))
            self.inner_maps = kept["inner"].detach()
            self.inner_weights = gi.mean((2, 3))
            self.features = kept["feats"].detach()

    torch.jit.save(torch.jit.script(Ref()), f"{out}/{name}.ref.pt")
