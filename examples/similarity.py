"""Embed a few sentences with an export dir and print their cosine similarity matrix."""

import sys

import numpy as np

import embedrt

SENTENCES = [
    "A man is playing a guitar.",
    "Someone is performing music on a guitar.",
    "The new movie is awesome.",
    "A cheetah is running behind its prey.",
    "The cat sits outside on the mat.",
]


def main(model: str) -> None:
    embedder = embedrt.load(model)
    vectors = embedder.embed(SENTENCES)  # L2-normalised: dot product = cosine
    similarity = vectors @ vectors.T
    print(f"{embedder!r}\n")
    width = max(len(s) for s in SENTENCES)
    print(" " * (width + 2) + "".join(f"{f'[{i}]':>7}" for i in range(len(SENTENCES))))
    for i, (sentence, row) in enumerate(zip(SENTENCES, similarity)):
        print(f"{sentence:<{width}}  " + "".join(f"{x:7.3f}" for x in row) + f"   [{i}]")
    np.testing.assert_allclose(np.diag(similarity), 1.0, atol=1e-5)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "default")
