"""PCA with scikit-learn's interface and attribute names (gradlens' C++
implementation: the exact and randomized solvers of scikit-learn 1.2)."""
from . import _gradlens
from ._estimator import Estimator
from ._convert import matrix as _matrix


class PCA(Estimator):
    """svd_solver: "auto" (exact, by the faster route for the shape), "full",
    "covariance_eigh" or "randomized"; n_components None keeps min(n, d)."""

    def __init__(self, n_components=None, whiten=False, svd_solver="auto", iterated_power="auto", n_oversamples=10,
                 random_state=0):
        self.n_components = n_components
        self.whiten = whiten
        self.svd_solver = svd_solver
        self.iterated_power = iterated_power
        self.n_oversamples = n_oversamples
        self.random_state = random_state

    def fit(self, X, y=None):
        power = -1 if self.iterated_power == "auto" else int(self.iterated_power)
        self._fit = _gradlens.pca_fit(_matrix(X), 0 if self.n_components is None else int(self.n_components),
                                      self.svd_solver, self.whiten, power, self.n_oversamples, self.random_state)
        self.mean_ = self._fit.mean
        self.components_ = self._fit.components
        self.explained_variance_ = self._fit.explained_variance
        self.explained_variance_ratio_ = self._fit.explained_variance_ratio
        self.singular_values_ = self._fit.singular_values
        self.noise_variance_ = self._fit.noise_variance
        self.n_components_ = self.components_.shape[0]
        self.n_samples_ = self._fit.n_samples
        return self

    def transform(self, X):
        self._check_fitted("_fit")
        return self._fit.transform(_matrix(X).to(self.mean_.dtype))

    def fit_transform(self, X, y=None):
        return self.fit(X).transform(X)

    def inverse_transform(self, Z):
        self._check_fitted("_fit")
        return self._fit.inverse_transform(_matrix(Z).to(self.mean_.dtype))
