"""Reference models for the torchvision parity tests (run with /usr/bin/python3).

Usage: models_torchvision_reference.py OUT_DIR

Writes, for resnet18 and resnet50 with seeded random weights and random
BatchNorm statistics:
  OUT_DIR/<arch>.pt      the model as TorchScript (torch.jit.script)
  OUT_DIR/<arch>.ref.pt  a TorchScript container with buffers `x` (input batch)
                         and `logits` (the model's eval-mode output on x)
and OUT_DIR/not_a_classifier.pt, a scripted module whose forward returns a
3-D tensor.
"""
import sys

import torch
import torchvision


class Ref(torch.nn.Module):
    def __init__(self, x, logits):
        super().__init__()
        self.register_buffer("x", x)
        self.register_buffer("logits", logits)

    def forward(self):
        return self.logits


class NotAClassifier(torch.nn.Module):
    def forward(self, x):
        return x.mean(1)


def main(out):
    torch.manual_seed(0)
    for arch in ("resnet18", "resnet50"):
        model = getattr(torchvision.models, arch)(weights=None, num_classes=10)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 1.5)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
        model.eval()
        x = torch.randn(3, 3, 64, 64)
        with torch.no_grad():
            logits = model(x)
        torch.jit.script(model).save(f"{out}/{arch}.pt")
        torch.jit.script(Ref(x, logits)).save(f"{out}/{arch}.ref.pt")
    torch.jit.script(NotAClassifier()).save(f"{out}/not_a_classifier.pt")


if __name__ == "__main__":
    main(sys.argv[1])
