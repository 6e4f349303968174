"""KMeans and GaussianMixture with scikit-learn's interface and attribute
names, fitted by gradlens' C++ implementations (seed for seed equal to
scikit-learn 1.2's: see docs/python.md)."""
import torch

from . import _gradlens
from ._convert import matrix as _matrix
from ._estimator import Estimator


class KMeans(Estimator):
    def __init__(self, n_clusters=8, init="k-means++", n_init=1, max_iter=300, tol=1e-4, random_state=0):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, X, y=None):
        given = None
        init = self.init
        if not isinstance(init, str):
            given, init = _matrix(init), "given"
        r = _gradlens.kmeans_fit(_matrix(X), self.n_clusters, init, self.n_init, self.max_iter, self.tol,
                                 self.random_state, given)
        self.cluster_centers_ = r.centroids
        self.labels_ = r.labels
        self.inertia_ = r.inertia
        self.n_iter_ = r.n_iter
        return self

    def predict(self, X):
        self._check_fitted("cluster_centers_")
        return _gradlens.kmeans_predict(_matrix(X).to(self.cluster_centers_.dtype), self.cluster_centers_)

    def fit_predict(self, X, y=None):
        return self.fit(X).labels_


class GaussianMixture(Estimator):
    def __init__(self, n_components=1, covariance_type="full", tol=1e-3, reg_covar=1e-6, max_iter=100, n_init=1,
                 init_params="kmeans", random_state=0):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state

    def fit(self, X, y=None):
        self._fit = _gradlens.gmm_fit(_matrix(X), self.n_components, self.covariance_type, self.tol, self.reg_covar,
                                      self.max_iter, self.n_init, self.init_params, self.random_state)
        self.weights_ = self._fit.weights
        self.means_ = self._fit.means
        self.covariances_ = self._fit.covariances
        self.precisions_cholesky_ = self._fit.precisions_cholesky
        self.lower_bound_ = self._fit.lower_bound
        self.n_iter_ = self._fit.n_iter
        self.converged_ = self._fit.converged
        return self

    def _x(self, X):
        self._check_fitted("_fit")
        return _matrix(X).to(torch.float64)

    def predict(self, X):
        return self._fit.predict(self._x(X))

    def predict_proba(self, X):
        return self._fit.predict_proba(self._x(X))

    def score_samples(self, X):
        return self._fit.score_samples(self._x(X))

    def score(self, X, y=None):
        return self._fit.score(self._x(X))

    def bic(self, X):
        return self._fit.bic(self._x(X))

    def aic(self, X):
        return self._fit.aic(self._x(X))

    def fit_predict(self, X, y=None):
        return self.fit(X).predict(X)
