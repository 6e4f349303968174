"""scipy's Spearman correlation and scikit-image's SSIM of pairs of maps.

usage: sanity_reference.py DIR   (reads a.npy, b.npy [N, H, W]; writes
ref_spearman.npy, ref_ssim.npy)
"""
import os
import sys

import numpy as np
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

d = sys.argv[1]
a, b = np.load(os.path.join(d, "a.npy")), np.load(os.path.join(d, "b.npy"))
rho = [spearmanr(x.reshape(-1), y.reshape(-1)).correlation for x, y in zip(a, b)]
ssim = [structural_similarity(x, y, data_range=1.0) for x, y in zip(a, b)]
np.save(os.path.join(d, "ref_spearman.npy"), np.array(rho, dtype=np.float64))
np.save(os.path.join(d, "ref_ssim.npy"), np.array(ssim, dtype=np.float64))
