"""(n, dim) vectors -> (n, 2) coordinates with t-SNE (scikit-learn), UMAP (umap-learn) or PCA, reproducibly."""

from __future__ import annotations

import warnings

import numpy as np

from embedrt.errors import InputError

METHODS = ("tsne", "umap", "pca")
MIN_POINTS = {"tsne": 5, "umap": 5, "pca": 3}  # below these the methods fail or draw nothing worth seeing
RANDOM_STATE = 0
SINGLE_THREAD_UP_TO = 5000  # points


def tsne_perplexity(n: int) -> float:
    """30 (scikit-learn's default) when there are enough points; a third of them otherwise (it must stay below n)."""
    return float(max(2.0, min(30.0, (n - 1) / 3)))


def umap_neighbours(n: int) -> int:
    return int(max(2, min(15, n - 1)))


def reduce_to_2d(vectors: np.ndarray, method: str = "tsne", *, random_state: int = RANDOM_STATE) -> np.ndarray:
    """float64 (n, 2) coordinates; the same input and random_state give the same picture."""
    if method not in METHODS:
        raise InputError(f"--method {method!r} is not one of {', '.join(METHODS)}.")
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.number):
        raise InputError(f"vectors must be a numeric (n, dim) array, got shape {vectors.shape} of {vectors.dtype}.")
    n = len(vectors)
    if n < MIN_POINTS[method]:
        raise InputError(f"--method {method} needs at least {MIN_POINTS[method]} points, got {n}; add inputs or use --method pca (needs {MIN_POINTS['pca']}).")
    if not np.isfinite(vectors).all():
        raise InputError("vectors contain NaN or Inf; check the .npy file or the model.")
    vectors = vectors.astype(np.float64)
    from threadpoolctl import threadpool_limits

    # A few thousand points reduce faster on one thread than with OpenMP threads contending for busy cores.
    with threadpool_limits(limits=1 if n <= SINGLE_THREAD_UP_TO else None):
        return _reduce(vectors, method, random_state)


def _reduce(vectors: np.ndarray, method: str, random_state: int) -> np.ndarray:
    n = len(vectors)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=random_state).fit_transform(vectors)
    if method == "tsne":
        from sklearn.manifold import TSNE

        tsne = TSNE(n_components=2, perplexity=tsne_perplexity(n), metric="cosine", init="pca", random_state=random_state)
        return tsne.fit_transform(vectors)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap warns that a random_state turns off its parallelism: that is the point
        import umap

        model = umap.UMAP(n_components=2, n_neighbors=umap_neighbours(n), metric="cosine", random_state=random_state)
        return np.asarray(model.fit_transform(vectors), dtype=np.float64)
