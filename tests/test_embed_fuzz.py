"""Properties of embed over inputs Hypothesis draws, on the real bundled model (issue 11).

Whatever it is given, embed returns finite float32 rows, one per text, or raises an EmbedrtError;
a flat collection of valid Unicode strings is never refused; a string holding a surrogate always is,
by its index. Inputs: arbitrary Unicode with surrogates and control characters, empty strings, long
repetitive texts, non-str items, nesting, single values, dicts, sets, arrays and generators.
"""

from __future__ import annotations

import re

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from embedrt.errors import EmbedrtError, InputError

FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SURROGATE = re.compile(r"[\ud800-\udfff]")

# Valid Unicode, with control, format, space and combining characters drawn often; surrogates separately
# (hypothesis's plain characters() draws surrogates too: codec="utf-8" keeps to what UTF-8 can encode).
ANY_VALID = st.characters(codec="utf-8")
VALID_CHARACTERS = st.one_of(ANY_VALID, st.characters(categories=["Cc", "Cf", "Zs", "Mn"]))
VALID_TEXTS = st.one_of(
    st.text(VALID_CHARACTERS, max_size=40),
    st.text(ANY_VALID, max_size=400),
    st.builds(lambda piece, times: piece * times, st.text(VALID_CHARACTERS, min_size=1, max_size=12), st.integers(0, 700)),  # to 8,400 chars: past the 256 tokens a text is cut at
)
TEXTS = st.one_of(VALID_TEXTS, VALID_TEXTS, VALID_TEXTS, st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])), min_size=1, max_size=20))
ITEMS = st.one_of(
    TEXTS, TEXTS, TEXTS, TEXTS, TEXTS, TEXTS,  # mostly texts: the rest are the hostile minority
    st.none(), st.integers(), st.floats(), st.binary(max_size=8), st.booleans(),
    st.lists(TEXTS, max_size=2), st.builds(np.array, st.lists(st.integers(0, 255), max_size=4)),
)
FLAT = st.lists(ITEMS, max_size=6)
# (what embed is given, the items it holds when it is a flat ordered collection, else None)
INPUTS = st.one_of(
    FLAT.map(lambda items: (items, items)),
    FLAT.map(lambda items: (items, items)),
    FLAT.map(lambda items: (tuple(items), items)),
    FLAT.map(lambda items: ((item for item in items), items)),  # a generator
    FLAT.map(lambda items: (np.array(items + [None], dtype=object)[:-1], items)),  # an object array, always 1-d
    st.lists(TEXTS, min_size=1, max_size=4).map(lambda items: (np.array(items), list(np.array(items)))),  # a str array
    st.dictionaries(st.text(max_size=5), TEXTS, max_size=3).map(lambda d: (d, None)),
    st.sets(st.text(max_size=5), max_size=3).map(lambda s: (s, None)),
    st.lists(st.lists(TEXTS, max_size=2), max_size=3).map(lambda items: (items, items)),  # nested
    st.one_of(TEXTS, st.none(), st.integers(), st.floats(), st.binary(max_size=8)).map(lambda x: (x, None)),  # a single value
)
CALLS = st.sampled_from(["embed", "embed_tokens", "chunk"])


def run(minilm, call: str, texts) -> tuple[int, np.ndarray | list]:
    """(rows, output), the output's dtype, shape and finiteness checked."""
    if call == "embed_tokens":
        out = minilm.embed_tokens(texts)
        assert all(v.dtype == np.float32 and v.ndim == 2 and v.shape[1] == 384 and np.isfinite(v).all() for v in out)
        return len(out), out
    out = minilm.embed(texts, long_text="chunk" if call == "chunk" else "truncate")
    assert out.dtype == np.float32 and out.shape[1:] == (384,) and np.isfinite(out).all()
    return len(out), out


@FUZZ
@given(given_items=INPUTS, call=CALLS)
def test_embed_gives_finite_rows_or_an_embedrt_error_whatever_it_is_given(minilm, given_items, call):
    texts, items = given_items
    flat_str = items is not None and all(isinstance(t, str) for t in items)
    surrogates = [i for i, t in enumerate(items or []) if isinstance(t, str) and SURROGATE.search(t)]
    try:
        rows, _ = run(minilm, call, texts)
    except EmbedrtError as exc:
        event(f"refused: {type(exc).__name__}")
        assert not (flat_str and not surrogates), f"valid texts refused: {exc}"
        if flat_str:
            assert isinstance(exc, InputError) and str(exc).startswith(f"texts[{surrogates[0]}] holds the surrogate code point")
        return
    event("embedded" if rows else "embedded nothing")
    assert flat_str and not surrogates, f"{type(texts).__name__} holding {items!r:.200} was accepted"
    assert rows == len(items)


@settings(FUZZ, max_examples=100)
@given(texts=st.lists(VALID_TEXTS, min_size=1, max_size=4), call=CALLS)
def test_valid_unicode_texts_always_give_finite_unit_vectors(minilm, texts, call):
    rows, out = run(minilm, call, texts)
    assert rows == len(texts)
    if call != "embed_tokens":
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
