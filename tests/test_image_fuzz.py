"""Property: any bytes, file or array given to ImageEmbedder.embed give a finite vector or an InputError naming it (issue 11).

Hypothesis damages real encoded images (flipped, cut, inserted bytes in every format Pillow writes here)
and draws arrays of any shape and dtype; Pillow parses untrusted data and raises many exception types.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from embedrt.errors import InputError
from image_samples import encoded

FUZZ = settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "ICO", "PPM")


def sample(fmt: str) -> bytes:
    """A small real picture (a colour gradient) in `fmt`."""
    y, x = np.mgrid[0:24, 0:32]
    picture = np.stack([x * 8, y * 10, (x + y) * 4], axis=-1).astype(np.uint8)
    return encoded(picture, fmt)


SAMPLES = {fmt: sample(fmt) for fmt in FORMATS}


@st.composite
def damaged(draw) -> bytes:
    data = bytearray(SAMPLES[draw(st.sampled_from(FORMATS))])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "zero"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[at : at + draw(st.integers(1, 64))] = bytes(min(64, len(data) - at))
    return bytes(data)


ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.uint8, np.uint16, np.float32, np.bool_, np.int64]),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=40),
)


def check(resnet18, item) -> None:
    try:
        out = resnet18.embed([item])
    except InputError as exc:
        event("refused: " + re.sub(r"\d+", "N", str(exc).split(": ", 1)[-1].split(" (")[0].split(";")[0][:40]))
        assert str(exc).startswith("images[0] ")
        return
    event("embedded")
    assert out.shape == (1, 512) and out.dtype == np.float32 and np.isfinite(out).all()


@pytest.mark.filterwarnings("ignore:.*:UserWarning:PIL.TiffImagePlugin")  # Pillow warns on the corrupt TIFF tags drawn here on purpose
@FUZZ
@given(data=st.one_of(damaged(), st.binary(max_size=64)))
def test_damaged_image_bytes_give_a_finite_vector_or_an_input_error(resnet18, data):
    check(resnet18, data)


@FUZZ
@given(array=ARRAYS)
def test_arrays_of_any_shape_and_dtype_give_a_finite_vector_or_an_input_error(resnet18, array):
    check(resnet18, array)
