"""Reference for tests/pipeline/model_input_peer_test.cpp: a small ImageFolder
(2 classes, images of odd sizes), a scripted CNN saved with a gradlens.json
among its extra files, and the logits torchvision's evaluation transform
gives each image: Resize(32) + CenterCrop(24) + ToTensor() + Normalize(mean,
std) for model.pt; PILToTensor().float() + Normalize in 0..255 units for
model255.pt. Also a model without gradlens.json, one with 3 class names and
one whose gradlens.json is not JSON.

usage: model_input_reference.py OUT_DIR   (writes OUT_DIR/data, *.pt, logits.json)
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

out = sys.argv[1]
rng = np.random.default_rng(5)
paths = []
for cls in ["a", "b"]:
    os.makedirs(f"{out}/data/{cls}", exist_ok=True)
    for i, (h, w) in enumerate([(40, 50), (37, 29), (64, 48)]):
        p = f"{out}/data/{cls}/{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
        paths.append(p)

torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
    torch.nn.Linear(4, 2)).eval()
scripted = torch.jit.script(model)

mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
mean255, std255 = [100.0, 110.0, 120.0], [50.0, 60.0, 70.0]
meta = {"mean": mean, "std": std, "image_size": 24, "resize": 32, "class_names": ["a", "b"], "layer": "0"}
meta255 = {"mean": mean255, "std": std255, "input_range": "0-255", "image_size": 24, "resize": 32}
torch.jit.save(scripted, f"{out}/model.pt", _extra_files={"gradlens.json": json.dumps(meta)})
torch.jit.save(scripted, f"{out}/model255.pt", _extra_files={"gradlens.json": json.dumps(meta255)})
torch.jit.save(scripted, f"{out}/plain.pt")
torch.jit.save(scripted, f"{out}/three.pt",
               _extra_files={"gradlens.json": json.dumps({"class_names": ["a", "b", "c"]})})
torch.jit.save(scripted, f"{out}/broken.pt", _extra_files={"gradlens.json": "{mean: [0.5]"})

geometry = [transforms.Resize(32), transforms.CenterCrop(24)]
t01 = transforms.Compose(geometry + [transforms.ToTensor(), transforms.Normalize(mean, std)])
t255 = transforms.Compose(geometry + [transforms.PILToTensor(), transforms.ConvertImageDtype(torch.float32),
                                      transforms.Lambda(lambda x: x * 255.0),
                                      transforms.Normalize(mean255, std255)])
logits = {}
with torch.no_grad():
    for p in paths:
        img = Image.open(p).convert("RGB")
        logits[p] = {"model.pt": model(t01(img)[None])[0].tolist(),
                     "model255.pt": model(t255(img)[None])[0].tolist()}
with open(f"{out}/logits.json", "w") as f:
    json.dump(logits, f)
