"""Clustering scores with scikit-learn's names and arguments (gradlens' C++
implementations). Labels are any integer arrays; X a float matrix."""
from . import _gradlens
from ._convert import labels as _labels
from ._convert import matrix as _matrix


def adjusted_rand_score(labels_true, labels_pred):
    return _gradlens.adjusted_rand_score(_labels(labels_true), _labels(labels_pred))


def normalized_mutual_info_score(labels_true, labels_pred, *, average_method="arithmetic"):
    return _gradlens.normalized_mutual_info_score(_labels(labels_true), _labels(labels_pred), average_method)


def adjusted_mutual_info_score(labels_true, labels_pred, *, average_method="arithmetic"):
    return _gradlens.adjusted_mutual_info_score(_labels(labels_true), _labels(labels_pred), average_method)


def silhouette_score(X, labels, *, sample_size=None, random_state=0):
    return _gradlens.silhouette_score(_matrix(X), _labels(labels), sample_size or 0, random_state)


def silhouette_samples(X, labels):
    return _gradlens.silhouette_samples(_matrix(X), _labels(labels))


def calinski_harabasz_score(X, labels):
    return _gradlens.calinski_harabasz_score(_matrix(X), _labels(labels))


def davies_bouldin_score(X, labels):
    return _gradlens.davies_bouldin_score(_matrix(X), _labels(labels))


def cluster_accuracy(labels_true, labels_pred):
    """Accuracy under the best one-to-one cluster -> class matching (Hungarian)."""
    return _gradlens.cluster_accuracy(_labels(labels_true), _labels(labels_pred))


def cos_sim(X, labels):
    """The seed's Cos_Sim: the mean over classes of the mean cosine similarity
    of the pairs of rows within the class (classes with one row skipped)."""
    return _gradlens.cos_sim(_matrix(X), _labels(labels))[0]
