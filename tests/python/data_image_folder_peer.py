"""Peer for tests/data/image_folder_peer_test.cpp: loads an image folder with
torchvision's ImageFolder and prints the class list, the (path, target)
samples and the transformed pixels as JSON.

Usage: data_image_folder_peer.py ROOT SIZE CHANNELS [RESIZE]
(RESIZE: Resize(RESIZE) + CenterCrop(SIZE); default Resize(SIZE) + CenterCrop(SIZE))
Masks (*.mask.png) are excluded, as gradlens treats them as masks, not samples.
"""
import json
import sys

import numpy as np
from torchvision import datasets, transforms
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension


def main():
    root, size, channels = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    resize = int(sys.argv[4]) if len(sys.argv) > 4 else size
    steps = []
    if size > 0:
        steps += [transforms.Resize(resize), transforms.CenterCrop(size)]
    if channels == 1:
        steps.append(transforms.Grayscale(1))
    ds = datasets.ImageFolder(
        root,
        transform=transforms.Compose(steps) if steps else None,
        is_valid_file=lambda p: has_file_allowed_extension(p, IMG_EXTENSIONS)
        and not p.lower().endswith(".mask.png"),
    )
    images = []
    for i in range(len(ds)):
        img, _ = ds[i]
        a = np.asarray(img, dtype=np.uint8)
        if a.ndim == 2:
            a = a[:, :, None]
        images.append({"shape": list(a.shape), "hex": a.tobytes().hex()})
    print(json.dumps({"classes": ds.classes,
                      "samples": [[p, t] for p, t in ds.samples],
                      "images": images}))


if __name__ == "__main__":
    main()
