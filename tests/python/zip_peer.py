"""Writes the archives tests/core/zip_peer_test.cpp and
tests/models/model_file_peer_test.cpp read, and prints what Python's zipfile
says of them (one line per entry: archive, name, method, CRC-32, size).

usage: zip_peer.py OUT_DIR
"""
import os
import sys
import zipfile
import zlib

out = sys.argv[1]


def payload(n, seed):
    return bytes((i * 131 + seed * 17 + (i >> 7)) & 0xFF for i in range(n))


# Plain stored entries, one empty, one over the 1 MiB chunk size.
with zipfile.ZipFile(os.path.join(out, "plain.zip"), "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", payload(1000, 1))
    z.writestr("archive/empty", b"")
    z.writestr("archive/data/0", payload((1 << 20) * 3 + 12345, 2))
# zip64 records for every entry, and an archive comment.
with zipfile.ZipFile(os.path.join(out, "zip64.zip"), "w", zipfile.ZIP_STORED) as z:
    for k in range(3):
        with z.open("big/%d" % k, "w", force_zip64=True) as f:
            f.write(payload(5000 + k, 3 + k))
    z.comment = b"a comment after the directory"
# One compressed entry (not verifiable without inflating it).
with zipfile.ZipFile(os.path.join(out, "deflated.zip"), "w") as z:
    z.writestr("a/stored", payload(300, 9), compress_type=zipfile.ZIP_STORED)
    z.writestr("a/deflated", payload(3000, 9), compress_type=zipfile.ZIP_DEFLATED)

if len(sys.argv) > 2 and sys.argv[2] == "torch":
    import torch
    import torch.nn as nn

    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 26 * 26, 3)).eval()
    torch.save(m.state_dict(), os.path.join(out, "state_dict.pt"))
    torch.jit.save(torch.jit.script(m), os.path.join(out, "scripted.pt"))
    torch.jit.save(torch.jit.trace(m, torch.zeros(1, 1, 28, 28)), os.path.join(out, "traced.pt"))

for name in sorted(os.listdir(out)):
    if not name.endswith((".zip", ".pt")):
        continue
    with zipfile.ZipFile(os.path.join(out, name)) as z:
        for i in z.infolist():
            assert zlib.crc32(z.read(i)) == i.CRC
            print(name, i.filename, i.compress_type, "%08x" % i.CRC, i.compress_size)
