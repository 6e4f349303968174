"""`import gradlens` against scikit-learn and PyTorch forward hooks (run by
CTest as PythonApiPeer.Pytest with PYTHONPATH=build/python)."""
import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import sklearn
import sklearn.base
import sklearn.cluster
import sklearn.decomposition
import sklearn.metrics
import sklearn.mixture
import torch

import gradlens

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import saliency_reference  # noqa: E402  (the numpy port of the MIT benchmark code)

# scikit-learn >= 1.4 draws k-means++'s first centre differently from 1.2,
# whose draws gradlens reproduces (docs/HACKING.md).
SAME_DRAWS = tuple(int(v) for v in sklearn.__version__.split(".")[:2]) < (1, 4)


def blobs(n=300, d=5, k=4, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 4
    y = rng.integers(0, k, n)
    return centres[y] + rng.normal(size=(n, d)), y


def test_kmeans_matches_scikit_learn():
    x, _ = blobs()
    if SAME_DRAWS:
        ours = gradlens.cluster.KMeans(n_clusters=4, n_init=3, random_state=7).fit(x)
        theirs = sklearn.cluster.KMeans(n_clusters=4, n_init=3, random_state=7).fit(x)
    else:
        init = x[[0, 50, 100, 150]]
        ours = gradlens.cluster.KMeans(n_clusters=4, init=init).fit(x)
        theirs = sklearn.cluster.KMeans(n_clusters=4, init=init, n_init=1).fit(x)
    assert np.array_equal(ours.labels_.numpy(), theirs.labels_)
    assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=1e-9)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.cluster_centers_.numpy(), theirs.cluster_centers_, atol=1e-9)
    np.testing.assert_array_equal(ours.predict(x[:20]).numpy(), theirs.predict(x[:20]))
    assert isinstance(ours.labels_, torch.Tensor)


def test_gaussian_mixture_matches_scikit_learn():
    x, _ = blobs(seed=1)
    kw = dict(n_components=3, covariance_type="diag", random_state=5, init_params="random" if not SAME_DRAWS else "kmeans")
    ours = gradlens.cluster.GaussianMixture(**kw).fit(x)
    theirs = sklearn.mixture.GaussianMixture(**kw).fit(x)
    np.testing.assert_allclose(ours.means_.numpy(), theirs.means_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.weights_.numpy(), theirs.weights_, rtol=1e-6)
    assert ours.lower_bound_ == pytest.approx(theirs.lower_bound_, rel=1e-8)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_array_equal(ours.predict(x).numpy(), theirs.predict(x))
    np.testing.assert_allclose(ours.predict_proba(x).numpy(), theirs.predict_proba(x), atol=1e-8)
    assert ours.bic(x) == pytest.approx(theirs.bic(x), rel=1e-8)
    assert ours.aic(x) == pytest.approx(theirs.aic(x), rel=1e-8)
    assert ours.score(x) == pytest.approx(theirs.score(x), rel=1e-8)


def test_pca_matches_scikit_learn():
    x, _ = blobs(n=200, d=12, seed=2)
    ours = gradlens.decomposition.PCA(n_components=4).fit(x)
    theirs = sklearn.decomposition.PCA(n_components=4, svd_solver="full").fit(x)
    np.testing.assert_allclose(ours.explained_variance_ratio_.numpy(), theirs.explained_variance_ratio_, rtol=1e-9)
    np.testing.assert_allclose(ours.components_.numpy(), theirs.components_, atol=1e-9)
    z = ours.transform(x)
    np.testing.assert_allclose(z.numpy(), theirs.transform(x), atol=1e-8)
    np.testing.assert_allclose(ours.inverse_transform(z).numpy(), theirs.inverse_transform(theirs.transform(x)),
                               atol=1e-8)
    w = gradlens.decomposition.PCA(n_components=3, whiten=True).fit_transform(x)
    np.testing.assert_allclose(np.abs(w.numpy()), np.abs(
        sklearn.decomposition.PCA(n_components=3, whiten=True, svd_solver="full").fit_transform(x)), atol=1e-8)


def test_metrics_match_scikit_learn():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 5, 400)
    b = np.where(rng.random(400) < 0.6, a, rng.integers(0, 6, 400))
    x, _ = blobs(n=400, seed=4)
    m = gradlens.metrics
    assert m.adjusted_rand_score(a, b) == pytest.approx(sklearn.metrics.adjusted_rand_score(a, b), abs=1e-12)
    for avg in ("arithmetic", "geometric", "min", "max"):
        assert m.normalized_mutual_info_score(a, b, average_method=avg) == pytest.approx(
            sklearn.metrics.normalized_mutual_info_score(a, b, average_method=avg), abs=1e-12)
        assert m.adjusted_mutual_info_score(a, b, average_method=avg) == pytest.approx(
            sklearn.metrics.adjusted_mutual_info_score(a, b, average_method=avg), abs=1e-10)
    assert m.silhouette_score(x, b) == pytest.approx(sklearn.metrics.silhouette_score(x, b), abs=1e-10)
    assert m.silhouette_score(x, b, sample_size=100, random_state=3) == pytest.approx(
        sklearn.metrics.silhouette_score(x, b, sample_size=100, random_state=3), abs=1e-10)
    np.testing.assert_allclose(m.silhouette_samples(x, b).numpy(), sklearn.metrics.silhouette_samples(x, b), atol=1e-10)
    assert m.calinski_harabasz_score(x, b) == pytest.approx(sklearn.metrics.calinski_harabasz_score(x, b), rel=1e-10)
    assert m.davies_bouldin_score(x, b) == pytest.approx(sklearn.metrics.davies_bouldin_score(x, b), rel=1e-10)
    # The best one-to-one matching, by brute force over 5 classes.
    assert m.cluster_accuracy([0, 0, 1, 1, 2], [1, 1, 0, 0, 0]) == pytest.approx(4 / 5)


def test_estimators_follow_scikit_learn_conventions():
    km = gradlens.cluster.KMeans(n_clusters=3, random_state=4)
    assert km.get_params()["n_clusters"] == 3
    clone = sklearn.base.clone(km)
    assert clone.get_params() == km.get_params() and clone is not km
    assert km.set_params(n_clusters=5) is km and km.n_clusters == 5
    with pytest.raises(ValueError, match="invalid parameter 'k'"):
        km.set_params(k=2)
    with pytest.raises(ValueError, match="not fitted"):
        gradlens.cluster.KMeans().predict(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="covariance_type: unknown 'ful'"):
        gradlens.cluster.GaussianMixture(covariance_type="ful").fit(np.random.rand(20, 2))
    with pytest.raises(ValueError, match="k"):
        gradlens.cluster.KMeans(n_clusters=50).fit(np.random.rand(10, 2))


class SmallNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU())
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


def test_model_extract_and_attribution_match_forward_hooks():
    torch.manual_seed(0)
    net = SmallNet().eval()
    x = torch.randn(6, 3, 16, 16)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    model = gradlens.load_model(torch.jit.script(net), image_size=16)
    assert model.num_classes == 5 and model.in_channels == 3 and model.default_layer == "features"
    assert "features.2" in model.layers()
    kept = {}
    net.features.register_forward_hook(lambda m, i, o: kept.__setitem__("a", o))
    net.fc.register_forward_hook(lambda m, i, o: kept.__setitem__("f", i[0]))
    z = net(x)
    pred = z.argmax(1)
    g, = torch.autograd.grad(z.gather(1, pred[:, None]).sum(), kept["a"])
    weights = g.mean((2, 3))
    out = gradlens.extract(model, x, y, representations=["gradcam-weights", "features", "logits"], batch_size=4)
    assert set(out) == {"gradcam-weights", "features", "logits", "preds"}
    torch.testing.assert_close(out["gradcam-weights"], weights, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(out["features"], kept["f"].detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.forward(x.numpy()), z.detach(), rtol=1e-5, atol=1e-6)
    assert torch.equal(out["preds"], pred)
    a = gradlens.attribution(model, x, method="gradcam")
    torch.testing.assert_close(a["weights"], weights, rtol=1e-4, atol=1e-7)
    cam = torch.relu((weights[:, :, None, None] * kept["a"].detach()).sum(1))
    torch.testing.assert_close(a["raw"], cam, rtol=1e-4, atol=1e-6)
    assert a["maps"].shape == (6, 16, 16) and float(a["maps"].max()) <= 1.0
    # Per-sample gradients of an inner convolution (--param-layer): one backward pass per image.
    pg = gradlens.extract(model, x, y, representations=["param-grad"], param_layer="features.2")["param-grad"]
    rows = []
    for i in range(6):
        net.zero_grad()
        torch.nn.functional.cross_entropy(net(x[i:i + 1]), pred[i:i + 1]).backward()
        rows.append(torch.cat([net.features[2].weight.grad.flatten(), net.features[2].bias.grad]))
    torch.testing.assert_close(pg, torch.stack(rows), rtol=1e-4, atol=1e-6)
    # A convolution followed by an in-place ReLU: its gradient is taken before the ReLU.
    torch.manual_seed(2)
    seq = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(inplace=True),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 5)).eval()
    seq_model = gradlens.load_model(torch.jit.script(seq), image_size=16)
    sz = seq(x).argmax(1)
    pg = gradlens.extract(seq_model, x, representations=["param-grad"], param_layer="0")["param-grad"]
    rows = []
    for i in range(6):
        seq.zero_grad()
        torch.nn.functional.cross_entropy(seq(x[i:i + 1]), sz[i:i + 1]).backward()
        rows.append(torch.cat([seq[0].weight.grad.flatten(), seq[0].bias.grad]))
    torch.testing.assert_close(pg, torch.stack(rows), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="--param-layer: unknown layer 'features.1'"):
        gradlens.extract(model, x, representations=["param-grad"], param_layer="features.1")
    with pytest.raises(ValueError, match="--layer"):
        gradlens.extract(model, x, layer="featurs")
    with pytest.raises(ValueError, match="images"):
        gradlens.extract(model, x[:, :1])
    with pytest.raises(ValueError, match="--device"):
        gradlens.load_model(torch.jit.script(SmallNet()), image_size=16, device="tpu")


def test_cos_sim_is_the_mean_within_class_cosine():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 6))
    y = rng.integers(0, 3, 30)
    v = x / np.linalg.norm(x, axis=1, keepdims=True)
    want = np.mean([np.mean([v[i] @ v[j] for i in np.flatnonzero(y == c) for j in np.flatnonzero(y == c) if i < j])
                    for c in range(3)])
    assert gradlens.metrics.cos_sim(x, y) == pytest.approx(want, abs=1e-12)


def test_saliency_metrics_match_the_mit_benchmark_port():
    rng = np.random.default_rng(6)
    p = rng.random((4, 12, 10))
    g = rng.random((4, 12, 10)) ** 3
    f = (rng.random((4, 12, 10)) < 0.1).astype(np.float64)
    f[:, 0, 0] = 1
    for name in ("cc", "kld", "sim"):
        ours = getattr(gradlens.saliency, name)(p, g).numpy()
        ref = [getattr(saliency_reference, name)(p[i], g[i]) for i in range(4)]
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12, err_msg=name)
    for name in ("nss", "auc_judd"):
        ours = getattr(gradlens.saliency, name)(p, f).numpy()
        ref = [getattr(saliency_reference, name)(p[i], f[i]) for i in range(4)]
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12, err_msg=name)
    # The sampled AUCs: a map equal to the fixations scores ~1, the reverse ~0.
    assert float(gradlens.saliency.auc_borji(f, f).min()) > 0.9
    assert float(gradlens.saliency.auc_shuffled(f, f, np.roll(f, 1, axis=0)).min()) > 0.5


class _SmallCnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3, padding=1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(6, 8, 3, stride=2, padding=1), torch.nn.ReLU())
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def test_tracin_equals_a_hand_written_sum_over_checkpoints():
    torch.manual_seed(1)
    x, y = torch.randn(20, 1, 10, 10), torch.arange(20) % 4
    xq, yq = torch.randn(3, 1, 10, 10), torch.tensor([0, 2, 3])
    net, eta = _SmallCnn(), [0.3, 0.1]
    checkpoints, expected = [], torch.zeros(3, 20, dtype=torch.float64)
    expected_conv = torch.zeros(3, 20, dtype=torch.float64)  # features.2's weight: --param-layers
    for lr in eta:
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        for _ in range(3):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
        net.eval()
        checkpoints.append(torch.jit.script(copy.deepcopy(net)))  # script shares the parameters

        def grads(images, labels):
            head, conv = [], []
            for i in range(images.size(0)):
                net.zero_grad()
                torch.nn.functional.cross_entropy(net(images[i:i + 1]), labels[i:i + 1]).backward()
                head.append(torch.cat([net.fc.weight.grad.flatten(), net.fc.bias.grad]).double().clone())
                conv.append(net.features[2].weight.grad.flatten().double().clone())
            return torch.stack(head), torch.stack(conv)
        (hq, cq), (ht, ct) = grads(xq, yq), grads(x, y)
        expected += lr * hq @ ht.T
        expected_conv += lr * cq @ ct.T
        net.train()
    r = gradlens.influence.tracin(checkpoints, x, y, xq, yq, eta, top_k=5, return_scores=True)
    assert torch.allclose(r["scores"], expected, rtol=1e-4, atol=1e-6)
    assert torch.equal(r["proponents"], expected.topk(5, dim=1).indices)
    # An inner convolution of the scripted model: at the full dimension both
    # projection factors are the identity, so the scores are exact.
    r = gradlens.influence.tracin(checkpoints, x, y, xq, yq, eta, top_k=5, return_scores=True,
                                  param_layers=["features.2"], proj_dim=8 * 6 * 3 * 3)
    assert expected_conv.abs().max() > 0.1 * expected.abs().max()  # the convolution's share is not negligible
    assert torch.allclose(r["scores"], expected + expected_conv, rtol=1e-4, atol=1e-6)
    models = [gradlens.load_model(c, image_size=10) for c in checkpoints]
    self_inf = gradlens.influence.self_influence(models, x, y, eta)
    assert self_inf.shape == (20,) and bool((self_inf > 0).all())
    # A convolution the model calls twice is refused, naming the flag given.
    with pytest.raises(ValueError, match="--param-layers: convolution conv: .* calls it 2 times"):
        gradlens.influence.tracin([torch.jit.script(_TwiceConv().eval())], x, y, xq, yq, [0.1],
                                  param_layers=["conv"], proj_dim=8)


class _TwiceConv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)
        self.fc = torch.nn.Linear(1, 4)

    def forward(self, x):
        return self.fc(self.conv(torch.relu(self.conv(x))).mean((2, 3)))


def test_label_noise_scores_follow_their_definitions():
    margin = np.array([[1.0, -2.0, 0.5], [3.0, -1.0, 0.5]])
    assert np.allclose(gradlens.label_noise.aum(margin).numpy(), -margin.mean(0))
    correct = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=np.uint8)
    assert gradlens.label_noise.forgetting(correct).tolist() == [1.0, 0.0, 3.0]
    p = np.array([[0.2, 0.9], [0.4, 0.9], [0.9, 0.9]])
    assert np.allclose(gradlens.label_noise.variability(p).numpy(), p.std(0))
    assert np.allclose(gradlens.label_noise.low_confidence(p).numpy(), 1 - p.mean(0))
    scores, flipped = np.array([0.6, 0.8, 0.1, 0.7]), np.array([True, False, False, True])
    assert gradlens.label_noise.found_at_fraction(scores, flipped, 0.5) == 0.5
    with pytest.raises(ValueError, match="--el2n-epoch 3"):
        gradlens.label_noise.el2n(p[:2], 3)


def test_hessian_matches_torch_explicit_hessian():
    torch.manual_seed(1)
    net = SmallNet().eval()
    x = torch.randn(10, 3, 16, 16)
    y = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
    model = gradlens.load_model(torch.jit.script(net), image_size=16)
    w, b = net.fc.weight, net.fc.bias

    def loss(wv, bv):
        z = torch.nn.functional.linear(net.pool(net.features(x)).flatten(1).detach().double(), wv, bv)
        return torch.nn.functional.cross_entropy(z, y)

    hw, hb = torch.autograd.functional.hessian(loss, (w.detach().double(), b.detach().double()))
    n_w = w.numel()
    h = torch.zeros(n_w + 5, n_w + 5, dtype=torch.float64)
    h[:n_w, :n_w] = hw[0].reshape(n_w, n_w)
    h[:n_w, n_w:] = hw[1].reshape(n_w, 5)
    h[n_w:, :n_w] = hb[0].reshape(5, n_w)
    h[n_w:, n_w:] = hb[1]
    ev = torch.linalg.eigvalsh(h)
    want = ev[ev.abs().argsort(descending=True)][:2]
    for batch_size in (3, 100):  # the mean over batches does not depend on the batch size
        r = gradlens.hessian_top_eigenvalues(model, x, y, k=2, params=["fc."], max_iter=1000, tol=1e-8,
                                             batch_size=batch_size)
        assert r["samples"] == 10 and r["dimension"] == n_w + 5
        np.testing.assert_allclose(r["eigenvalues"], want.numpy(), rtol=1e-3, atol=1e-6)
        assert [tuple(t.shape) for t in r["eigenvectors"][0]] == [(5, 16), (5,)]
    t = gradlens.hessian_trace(model, x.numpy(), y.numpy(), params=["fc."], max_iter=3000, min_iter=3000)
    assert len(t["samples"]) == 3000 and t["std_error"] > 0
    assert abs(t["trace"] - float(h.trace())) <= 4 * t["std_error"]
    with pytest.raises(ValueError, match="--params"):
        gradlens.hessian_top_eigenvalues(model, x, y, params=["nothing"])
    with pytest.raises(ValueError, match="--wrt"):
        gradlens.hessian_trace(model, x, y, wrt="weights")
    with pytest.raises(ValueError, match="labels"):
        gradlens.hessian_trace(model, x, y[:3])


def test_audit_finds_degenerate_and_label_informed_representations():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 60)
    w = rng.normal(size=(4, 7))
    head = w[y] / 16.0  # Grad-CAM weights of a GAP + linear head: W[c] / (H W)
    a = gradlens.audit(head.astype(np.float32), y, 4, name="gradcam-weights", head_identity=head)
    assert a["degenerate"] and a["equals_head_identity"] and a["distinct_rows"] == 4
    assert a["rank"] == np.linalg.matrix_rank(head.astype(np.float32))
    x = rng.normal(size=(60, 7)) + 2.0 * np.eye(4, 7)[y]
    b = gradlens.audit(x, y, 4, name="features", uses_true_labels=True)
    # Nearest class mean on row-normalised vectors, by hand.
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    means = np.stack([u[y == c].mean(0) for c in range(4)])
    ncm = (((u[:, None, :] - means[None]) ** 2).sum(2).argmin(1) == y).mean()
    assert b["ncm_accuracy"] == pytest.approx(ncm, abs=1e-12)
    assert b["majority_accuracy"] == pytest.approx(np.bincount(y).max() / 60, abs=1e-12)
    assert not b["degenerate"] and b["label_informed"] and b["rank"] == 7 and b["distinct_rows"] == 60
    with pytest.raises(ValueError, match="features"):
        gradlens.audit(np.full((5, 3), np.nan), name="features")


def assert_same_numbers(a, b, where):
    """Equal structure, equal strings and booleans, floats to 1e-9 relative."""
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            assert_same_numbers(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            assert_same_numbers(u, v, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12, nan_ok=True), where
    else:
        assert a == b, where


class TinyGrayNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3, stride=2, padding=1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(6, 8, 3, stride=2, padding=1), torch.nn.ReLU())
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


FASHION_MNIST = os.path.join(os.environ.get("GRADLENS_DATASETS") or "/usr/share/datasets", "fashion-mnist")


@pytest.mark.skipif(not os.path.exists(FASHION_MNIST) or "GRADLENS_BINARY" not in os.environ,
                    reason="needs dataset-fashion-mnist and the gradlens command")
def test_evaluate_equals_the_command(tmp_path):
    torch.manual_seed(2)
    model_file = str(tmp_path / "tiny.pt")
    torch.jit.save(torch.jit.script(TinyGrayNet().eval()), model_file)
    got = gradlens.evaluate(model_file, per_class=6, out=tmp_path / "py", cache=False, kmeans_n_init=2, pca_dims=5)
    cli = subprocess.run([os.environ["GRADLENS_BINARY"], "--quiet", "evaluate", "--models", model_file,
                          "--per-class", "6", "--out", str(tmp_path / "cli"), "--no-cache", "--kmeans-n-init", "2",
                          "--pca-dims", "5"], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    with open(tmp_path / "cli" / "report.json") as f:
        want = json.load(f)
    assert os.path.exists(got["report_html"]) and got["out"] == str(tmp_path / "py")
    m, w = got["models"][0], want["models"][0]
    for key in ("accuracy", "representations", "grad_cam", "misclassification"):
        assert_same_numbers(m[key], w[key], key)
    assert m["labels"].shape == (60,) and m["gradcam_maps"].shape[0] == 60
    assert float((m["preds"] == m["labels"]).double().mean()) == pytest.approx(m["accuracy"])
    assert set(m["label_error_scores"]) and all(v.shape == (60,) for v in m["label_error_scores"].values())
    with pytest.raises(ValueError, match="--per-class"):
        gradlens.evaluate(model_file, per_class=0, out=tmp_path / "bad")
    with pytest.raises(ValueError, match="--channels"):
        gradlens.evaluate(model_file, channels=2, out=tmp_path / "bad")


@pytest.mark.skipif(not os.path.exists(FASHION_MNIST) or "GRADLENS_BINARY" not in os.environ,
                    reason="needs dataset-fashion-mnist and the gradlens command")
def test_train_equals_the_command(tmp_path):
    # The same recipe from Python and from the command: the same epochs, losses and weights.
    flags = dict(width=4, epochs=2, train_per_class=10, test_per_class=5, batch_size=50, lambda_grad=0.1)
    got = gradlens.train(tmp_path / "py", seed=3, **flags)
    cli = subprocess.run([os.environ["GRADLENS_BINARY"], "--quiet", "--seed", "3", "--threads",
                          str(torch.get_num_threads()), "train", "--out", str(tmp_path / "cli")] +
                         [a for k, v in flags.items() for a in ("--" + k.replace("_", "-"), str(v))],
                         capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    with open(tmp_path / "cli" / "summary.json") as f:
        want = json.load(f)
    assert got["checkpoint"] == str(tmp_path / "py" / "model.ckpt") and os.path.exists(got["checkpoint"])
    assert len(got["epochs"]) == 2 and got["epochs"][-1]["epoch"] == 2
    assert "L_grad" in " ".join(got["epochs"][0]), got["epochs"][0].keys()
    assert got["test_accuracy"] == pytest.approx(want["final_test_acc"], abs=1e-12)
    py_model = gradlens.load_model(got["checkpoint"])
    cli_model = gradlens.load_model(str(tmp_path / "cli" / "model.ckpt"))
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(py_model.forward(x), cli_model.forward(x))
    defaults = gradlens.train_options()
    assert defaults["epochs"] == 8 and defaults["schedule"] == "onecycle" and defaults["grad_form"] == "cosine"
    with pytest.raises(ValueError, match="unknown option 'epoch'.*epochs"):
        gradlens.train(tmp_path / "bad", epoch=1)
    with pytest.raises(ValueError, match="--noisy-labels"):
        gradlens.train(tmp_path / "bad", noisy_labels=1.5, epochs=1)


def test_faithfulness_localisation_and_sanity_metrics_from_python():
    torch.manual_seed(6)
    n, c, h, w, k = 4, 2, 6, 6, 3
    x = torch.randn(n, c, h, w)
    maps = torch.rand(n, h, w)
    targets = torch.tensor([0, 1, 2, 0])
    W = torch.randn(k, c * h * w) * 0.3
    linear = lambda t: t.flatten(1) @ W.T  # noqa: E731  (any callable model)
    steps = 4
    d = gradlens.saliency.deletion(linear, x, maps, targets, steps=steps)
    # By hand: pixels zeroed in decreasing order of the map, round(s * P / steps) after step s.
    p = h * w
    for i in range(n):
        order = np.argsort(-maps[i].reshape(-1).numpy(), kind="stable")
        probs = []
        for s in range(steps + 1):
            img = x[i].clone().reshape(c, p)
            img[:, order[:int(np.floor(s * p / steps + 0.5))]] = 0
            probs.append(float(torch.softmax(linear(img.reshape(1, c, h, w)).double(), 1)[0, targets[i]]))
        np.testing.assert_allclose(d["probs"][i].numpy(), probs, rtol=1e-6, atol=1e-7)
        f, q = d["fractions"].numpy(), np.array(probs)
        assert float(d["auc"][i]) == pytest.approx(float(((q[1:] + q[:-1]) / 2 * np.diff(f)).sum()), abs=1e-7)
    ins = gradlens.saliency.insertion(linear, x, maps, targets, steps=steps)
    assert torch.allclose(ins["probs"][:, -1], d["probs"][:, 0])  # insertion ends at the image
    # Patches of 3 x 3: the quadrant with the largest map sum goes first.
    dp = gradlens.saliency.deletion(linear, x, maps, targets, steps=4, patch_size=3)
    for i in range(n):
        sums = maps[i].reshape(2, 3, 2, 3).sum((1, 3)).reshape(-1)
        first = int(torch.argmax(sums))
        img = x[i].clone()
        img[:, 3 * (first // 2):3 * (first // 2) + 3, 3 * (first % 2):3 * (first % 2) + 3] = 0
        want = float(torch.softmax(linear(img[None]).double(), 1)[0, targets[i]])
        assert float(dp["probs"][i, 1]) == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="--patch-size 4 must divide the image size 6 x 6"):
        gradlens.saliency.deletion(linear, x, maps, targets, patch_size=4)
    cc = gradlens.saliency.confidence_change(linear, x, maps, targets)
    y = torch.softmax(linear(x).double(), 1).gather(1, targets[:, None])[:, 0]
    o = torch.softmax(linear(x * maps[:, None]).double(), 1).gather(1, targets[:, None])[:, 0]
    np.testing.assert_allclose(cc["average_drop"].numpy(), ((y - o).clamp_min(0) / y).numpy(), rtol=1e-6)
    r = gradlens.saliency.road(linear, x, maps, targets, fractions=(0.25, 0.5), noise=0)
    assert r["morf"].shape == (n, 2)
    torch.testing.assert_close(r["combined"], (r["lerf"].mean(1) - r["morf"].mean(1)) / 2)
    flat = torch.full((1, 1, 5, 5), 2.5)
    removed = torch.zeros(1, 5, 5, dtype=torch.bool)
    removed[0, 1:4, 1:4] = True
    assert torch.allclose(gradlens.saliency.linear_imputation(flat, removed), flat)
    # A gradlens.Model and the same torch module as a callable give the same numbers.
    net = SmallNet().eval()
    xs = torch.randn(3, 3, 16, 16)
    ms = torch.rand(3, 16, 16)
    ts = torch.tensor([0, 1, 2])
    model = gradlens.load_model(torch.jit.script(net), image_size=16)
    a = gradlens.saliency.deletion(model, xs, ms, ts, steps=5)
    b = gradlens.saliency.deletion(net, xs, ms, ts, steps=5)
    torch.testing.assert_close(a["auc"], b["auc"], rtol=1e-5, atol=1e-6)
    # Localisation against masks, by hand.
    masks = torch.zeros(n, h, w)
    masks[:, 1:3, 2:5] = 1
    energy = (maps * masks).sum((1, 2)) / maps.sum((1, 2))
    np.testing.assert_allclose(gradlens.saliency.energy_pointing_game(maps, masks).numpy(), energy.numpy(),
                               rtol=1e-6)
    top = maps.reshape(n, -1).argmax(1)
    hit = masks.reshape(n, -1).gather(1, top[:, None])[:, 0]
    np.testing.assert_array_equal(gradlens.saliency.pointing_game(maps, masks, tolerance=0).numpy(), hit.numpy())
    rl = gradlens.saliency.random_logit(model, xs, ts)
    assert bool((rl["other_classes"] != ts).all()) and rl["ssim"].shape == (3,)
    # Spearman and SSIM as scipy and scikit-image compute them.
    import scipy.stats
    import skimage.metrics
    p, q = torch.rand(2, 12, 12, dtype=torch.float64), torch.rand(2, 12, 12, dtype=torch.float64)
    p[1, :6] = 0.5  # ties
    rho = gradlens.saliency.spearman(p, q)
    want = [scipy.stats.spearmanr(p[i].flatten(), q[i].flatten())[0] for i in range(2)]
    np.testing.assert_allclose(rho.numpy(), want, rtol=1e-9)
    np.testing.assert_allclose(gradlens.saliency.ssim(p, q).numpy(),
                               [skimage.metrics.structural_similarity(p[i].numpy(), q[i].numpy(), data_range=1.0)
                                for i in range(2)], rtol=1e-6)
    # The model-randomisation test: head first, and the weights come back.
    before = model.forward(xs)
    steps = gradlens.saliency.model_randomisation(model, xs, method="gradient", max_groups=2)
    assert [st["group"] for st in steps] == ["fc", "features.2"]
    ref = gradlens.attribution(model, xs, method="gradient")["maps"]
    assert bool((steps[0]["spearman"].abs() <= 1).all()) and steps[0]["ssim"].shape == (3,)
    torch.testing.assert_close(model.forward(xs), before)
    torch.testing.assert_close(gradlens.attribution(model, xs, method="gradient")["maps"], ref)
    with pytest.raises(ValueError, match="model"):
        gradlens.saliency.deletion(42, x, maps, targets)
    with pytest.raises(ValueError, match="fractions"):
        gradlens.saliency.road(linear, x, maps, targets, fractions=(1.5,))


def test_openblas_threads_are_restored_after_each_call():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"]
    if not blas or blas[0]["num_threads"] < 2:
        pytest.skip("needs OpenBLAS with at least 2 threads")
    before = blas[0]["num_threads"]
    x, _ = blobs()
    gradlens.decomposition.PCA(2).fit(x)  # held at one thread during the call (as the command runs)
    after = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"][0]["num_threads"]
    assert after == before
