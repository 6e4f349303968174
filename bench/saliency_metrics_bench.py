#!/usr/bin/python3
"""numpy side of bench/saliency_metrics_bench.cpp.

  saliency_metrics_bench.py DIR N SIZE N_SPLITS STEP

Reads pred.f32, gt.f32 ([N, SIZE, SIZE] float32), fix.u8, other.u8 (uint8)
and the sampled AUCs' negatives (<borji|sauc>_neg.i64: every image's
[N_SPLITS, k_i] block side by side, i.e. a [N_SPLITS, sum k_i] int64 array;
<borji|sauc>_k.i64: the k_i), times each metric of
tests/python/saliency_reference.py over all images, writes the values to
numpy_<metric>.f64 and prints "<metric> <seconds>" lines.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "python"))
import saliency_reference as ref  # noqa: E402


def main(argv):
    directory = argv[1]
    n, size, n_splits = int(argv[2]), int(argv[3]), int(argv[4])
    step = float(argv[5])
    shape = (n, size, size)

    def path(name):
        return os.path.join(directory, name)

    # float64 inside the metrics, as the C++ side.
    pred = np.fromfile(path("pred.f32"), dtype="<f4").reshape(shape).astype(np.float64)
    gt = np.fromfile(path("gt.f32"), dtype="<f4").reshape(shape).astype(np.float64)
    fix = np.fromfile(path("fix.u8"), dtype=np.uint8).reshape(shape)
    other = np.fromfile(path("other.u8"), dtype=np.uint8).reshape(shape)

    def negatives(prefix):
        k = np.fromfile(path(prefix + "_k.i64"), dtype="<i8")
        flat = np.fromfile(path(prefix + "_neg.i64"), dtype="<i8").reshape(n_splits, -1)
        starts = np.concatenate([[0], np.cumsum(k)])
        return [flat[:, starts[i]:starts[i + 1]] for i in range(n)]

    borji_neg = negatives("borji")
    sauc_neg = negatives("sauc")
    metrics = [
        ("cc", lambda i: ref.cc(pred[i], gt[i])),
        ("kld", lambda i: ref.kld(pred[i], gt[i])),
        ("sim", lambda i: ref.sim(pred[i], gt[i])),
        ("nss", lambda i: ref.nss(pred[i], fix[i])),
        ("auc_judd", lambda i: ref.auc_judd(pred[i], fix[i])),
        ("auc_borji", lambda i: ref.sampled_auc(pred[i], fix[i], borji_neg[i], step)),
        ("auc_shuffled", lambda i: ref.sampled_auc(pred[i], fix[i], sauc_neg[i], step)),
    ]
    for name, fn in metrics:
        t0 = time.perf_counter()
        values = np.array([fn(i) for i in range(n)], dtype="<f8")
        elapsed = time.perf_counter() - t0
        values.tofile(path("numpy_%s.f64" % name))
        print(name, "%.6f" % elapsed, flush=True)


if __name__ == "__main__":
    main(sys.argv)
