"""Evaluation of embedders on the user's data: quality (STS, retrieval, k-NN classification) and parity.

Quality needs only numpy; parity needs the export extra (torch). File formats: embedrt.evaluation.datasets.
"""
