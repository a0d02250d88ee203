"""Pictures of embeddings: reduce to 2-D (t-SNE, UMAP, PCA) and draw a scatter coloured by label (PNG or HTML).

Needs the eval extra (scikit-learn, umap-learn, matplotlib).
"""
