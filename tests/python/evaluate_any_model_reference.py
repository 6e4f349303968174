"""End-to-end reference for tests/apps/evaluate_cli_test.cpp: `gradlens
evaluate` on a vision transformer (not a ResNet) whose preprocessing and
Grad-CAM layer come from its gradlens.json.

usage: evaluate_any_model_reference.py export OUT_DIR
         writes OUT_DIR/vit.pt: torchvision's VisionTransformer class at
         32 px (8 px patches: a 4x4 grid, 32-dim tokens), 4 classes, seeded,
         with gradlens.json {mean, std, image_size, layer}
       evaluate_any_model_reference.py check OUT_DIR REPORT_DIR
         runs the model eagerly on every image of REPORT_DIR/samples.csv
         with torchvision's ToTensor + Normalize, and prints "ok N" when the
         predictions and confidences agree with the report's
"""
import csv
import json
import os
import sys

import torch
import torchvision
from PIL import Image
from torchvision import transforms

MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]


def build():
    torch.manual_seed(0)
    m = torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=4)
    torch.nn.init.normal_(m.heads.head.weight, std=0.5)  # torchvision starts it at zero
    return m.eval()


mode, out = sys.argv[1], sys.argv[2]
if mode == "export":
    meta = {"mean": MEAN, "std": STD, "image_size": 32, "layer": "encoder.layers.encoder_layer_1.ln_1"}
    torch.jit.save(torch.jit.script(build()), f"{out}/vit.pt", _extra_files={"gradlens.json": json.dumps(meta)})
    sys.exit(0)

model = build()
tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
names = json.load(open(f"{sys.argv[3]}/report.json"))["class_names"]
n = 0
with open(f"{sys.argv[3]}/samples.csv") as f:
    for row in csv.DictReader(f):
        x = tf(Image.open(os.path.join(out, row["sample"])).convert("RGB"))[None]
        with torch.no_grad():
            p = torch.softmax(model(x), 1)[0]
        pred = names[int(p.argmax())]
        assert pred == row["vit.prediction"], (row["sample"], pred, row["vit.prediction"])
        assert abs(float(p.max()) - float(row["vit.confidence"])) < 1e-4, (row["sample"], float(p.max()), row)
        n += 1
print("ok", n)
