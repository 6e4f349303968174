"""`import gradlens` against scikit-learn in one Python process, on the sizes
of bench/analysis_bench.cpp: does the Python call overhead eat the C++
speed-up? Each fit runs REPEAT times on both sides (the fastest counts; the
first doubles as warm-up), with the same threads.

usage: PYTHONPATH=build/python /usr/bin/python3 bench/python_api_bench.py [THREADS [REPEAT [SCALE]]]
(SCALE divides the row counts, for a quick run). Prints, per fit, both
times and the ratio scikit-learn / gradlens (> 1: gradlens is faster).
"""
import os
import sys
import time

threads = int(sys.argv[1]) if len(sys.argv) > 1 else (os.cpu_count() or 1)
repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
scale = int(sys.argv[3]) if len(sys.argv) > 3 else 1
os.environ.setdefault("OMP_NUM_THREADS", str(threads))

import numpy as np  # noqa: E402
import sklearn.cluster  # noqa: E402
import sklearn.decomposition  # noqa: E402
import sklearn.metrics  # noqa: E402
import sklearn.mixture  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import gradlens  # noqa: E402

torch.set_num_threads(threads)
rng = np.random.default_rng(0)


def blobs(n, d, k, dtype):
    centres = rng.normal(size=(k, d)) * 3
    return (centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))).astype(dtype)


def fastest(fn):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def report(name, ours, theirs):
    print(f"{name:34s} gradlens {ours:8.3f} s  scikit-learn {theirs:8.3f} s  ratio {theirs / ours:5.2f}x", flush=True)


with threadpool_limits(limits=threads):
    xk = blobs(60000 // scale, 512, 10, np.float32)
    init = xk[:10].copy()
    report("kmeans k=10 60000x512 (20 it)",
           fastest(lambda: gradlens.cluster.KMeans(10, init=init, max_iter=20, tol=0).fit(xk)),
           fastest(lambda: sklearn.cluster.KMeans(10, init=init, n_init=1, max_iter=20, tol=0,
                                                  algorithm="lloyd").fit(xk)))
    xgd = blobs(60000 // scale, 64, 10, np.float64)
    xgf = blobs(10000 // scale, 50, 5, np.float64)
    for name, x, k, cov in (("gmm diag k=10 60000x64 (20 it)", xgd, 10, "diag"),
                            ("gmm full k=5 10000x50 (20 it)", xgf, 5, "full")):
        report(name,
               fastest(lambda: gradlens.cluster.GaussianMixture(k, covariance_type=cov, max_iter=20, tol=0,
                                                                init_params="random").fit(x)),
               fastest(lambda: sklearn.mixture.GaussianMixture(k, covariance_type=cov, max_iter=20, tol=0,
                                                               init_params="random", random_state=0).fit(x)))
    xp = (rng.normal(size=(60000 // scale, 784)) * np.linspace(0.1, 3.0, 784)).astype(np.float32)
    report("pca exact 50 of 60000x784",
           fastest(lambda: gradlens.decomposition.PCA(50).fit(xp)),
           fastest(lambda: sklearn.decomposition.PCA(50, svd_solver="full").fit(xp)))
    report("pca randomized 50 of 60000x784",
           fastest(lambda: gradlens.decomposition.PCA(50, svd_solver="randomized").fit(xp)),
           fastest(lambda: sklearn.decomposition.PCA(50, svd_solver="randomized", random_state=0).fit(xp)))
    xs = blobs(10000 // scale, 512, 10, np.float32)
    ls = sklearn.metrics.pairwise_distances_argmin(xs, xs[:10])
    report("silhouette 10000x512",
           fastest(lambda: gradlens.metrics.silhouette_score(xs, ls)),
           fastest(lambda: sklearn.metrics.silhouette_score(xs, ls)))
