"""scikit-learn side of bench/analysis_bench.cpp: times the same fits on the
.npy inputs the C++ benchmark wrote.
Usage: analysis_bench.py DIR THREADS [REPEAT [ONLY]]: each fit runs REPEAT
times (default 3) and the fastest is printed; ONLY keeps the names that
contain it. Prints "name<TAB>seconds" lines."""
import os
import sys
import time
import warnings

d, threads = sys.argv[1], int(sys.argv[2])
repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 3
only = sys.argv[4] if len(sys.argv) > 4 else ""
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.metrics import silhouette_score  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402

warnings.simplefilter("ignore")


def load(name):
    return np.load(os.path.join(d, name + ".npy"))


def timed(name, fn):
    if only not in name:
        return
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    print(f"{name}\t{best:.6f}", flush=True)


with threadpool_limits(limits=threads):
    x, init = load("kmeans_x"), load("kmeans_init")
    timed("kmeans k=10 60000x512 (20 it)",
          lambda: KMeans(10, init=init, n_init=1, max_iter=20, tol=0, algorithm="lloyd").fit(x))
    x = load("gmm_diag_x")
    timed("gmm diag k=10 60000x64 (20 it)",
          lambda: GaussianMixture(10, covariance_type="diag", init_params="random", max_iter=20, tol=0,
                                  random_state=0).fit(x))
    x = load("gmm_full_x")
    timed("gmm full k=5 10000x50 (20 it)",
          lambda: GaussianMixture(5, covariance_type="full", init_params="random", max_iter=20, tol=0,
                                  random_state=0).fit(x))
    x = load("pca_x")
    timed("pca exact 50 of 60000x784", lambda: PCA(50, svd_solver="full").fit(x))
    timed("pca randomized 50 of 60000x784", lambda: PCA(50, svd_solver="randomized", random_state=0).fit(x))
    x, labels = load("sil_x"), load("sil_labels")
    timed("silhouette 10000x512", lambda: silhouette_score(x, labels))
