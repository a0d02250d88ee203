"""Every bad image input of issue #3: a correct vector or an error naming the input; on_error="skip" keeps the rest."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from embedrt.errors import EmbedrtError, InputError
from embedrt.runtime.image.embedder import PartialEmbeddings
from image_samples import encoded, photo, write

SAME = 1e-4


def good_file(tmp_path, name="chelsea"):
    return write(tmp_path / f"{name}.png", photo(name))


def test_a_missing_file_is_named_with_its_index(resnet18, tmp_path):
    missing = tmp_path / "nowhere.jpg"
    with pytest.raises(InputError, match=r"images\[1\] .*nowhere\.jpg: no such file"):
        resnet18.embed([good_file(tmp_path), missing])


def test_a_zero_byte_file_is_named(resnet18, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"images\[0\] .*empty\.png: empty file"):
        resnet18.embed([empty])


def test_a_non_image_file_is_named(resnet18, tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture\n" * 20)
    with pytest.raises(InputError, match=r"images\[0\] .*notes\.jpg: not an image"):
        resnet18.embed([text])


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_truncated_image_is_named(resnet18, tmp_path, fmt):
    data = encoded(photo("coffee"), fmt)
    cut = tmp_path / f"cut.{fmt.lower()}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=rf"images\[2\] .*cut\.{fmt.lower()}: truncated or corrupt"):
        resnet18.embed([good_file(tmp_path), good_file(tmp_path, "rocket"), cut])


def test_corrupt_bytes_after_a_valid_header_are_named(resnet18):
    data = bytearray(encoded(photo("coffee"), "PNG"))
    data[100:4000] = bytes(3900)  # zeroed compressed data: CRC and zlib both break
    with pytest.raises(InputError, match=r"images\[0\] <\d+ bytes>: truncated or corrupt"):
        resnet18.embed([bytes(data)])


def test_a_1x1_image_gives_the_vector_of_its_colour(resnet18):
    pixel = np.array([[[200, 30, 90]]], dtype=np.uint8)
    tile = np.broadcast_to(pixel, (300, 300, 3)).copy()
    got, expected = resnet18.embed([pixel, tile])
    assert np.abs(got - expected).max() < SAME


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns past 89M pixels; 100M is allowed
def test_a_10000x10000_image_gives_the_vector_of_the_same_picture_smaller(resnet18, tmp_path):
    def quadrants(side):
        image = np.zeros((side, side, 3), dtype=np.uint8)
        half = side // 2
        image[:half, :half] = (250, 20, 20)
        image[:half, half:] = (20, 250, 20)
        image[half:, :half] = (20, 20, 250)
        image[half:, half:] = (240, 240, 30)
        return image

    big = write(tmp_path / "big.png", quadrants(10_000), compress_level=1)
    got, expected = resnet18.embed([big, quadrants(1000)])
    assert np.abs(got - expected).max() < 0.01  # the same picture; only the boundary pixels' blur differs


def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped(resnet18, tmp_path):
    ramp = np.linspace(0, 65535, 256 * 256).reshape(256, 256).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")  # really a 16-bit file
    eight_bit = np.rint(ramp / 257.0).astype(np.uint8)
    got, expected, clipped = resnet18.embed([path, eight_bit, np.full((256, 256), 255, dtype=np.uint8)])
    assert np.abs(got - expected).max() < SAME
    assert np.abs(got - clipped).max() > 0.05


def test_an_extremely_elongated_image_is_refused_before_resizing(resnet18):
    strip = np.zeros((1, 10_000, 3), dtype=np.uint8)
    with pytest.raises(InputError, match=r"images\[0\] <array \(1, 10000, 3\) uint8>: 10000x1: too elongated"):
        resnet18.embed([strip])


def test_unusable_python_objects_are_named(resnet18):
    with pytest.raises(InputError, match=r"images\[1\] <int>: unsupported type int"):
        resnet18.embed([photo("coffee"), 42])
    with pytest.raises(InputError, match=r"images\[0\] <array \(4, 4, 3\) float32>: array dtype float32"):
        resnet18.embed([np.zeros((4, 4, 3), dtype=np.float32)])
    with pytest.raises(InputError, match="wrap one image in a list"):
        resnet18.embed("cat.jpg")


def test_on_error_skip_returns_the_good_vectors_and_the_failed_indices(resnet18, tmp_path):
    missing = tmp_path / "gone.png"
    cut = tmp_path / "cut.png"
    cut.write_bytes(encoded(photo("coffee"))[:5000])
    images = [photo("astronaut"), missing, photo("chelsea"), cut, photo("rocket")]
    result = resnet18.embed(images, on_error="skip")
    assert isinstance(result, PartialEmbeddings)
    assert result.indices.tolist() == [0, 2, 4]
    expected = resnet18.embed([images[0], images[2], images[4]])
    assert np.abs(result.vectors - expected).max() < SAME
    assert [(f.index, f.input) for f in result.failures] == [(1, str(missing)), (3, str(cut))]
    assert result.failures[0].reason == "no such file"
    assert result.failures[1].reason.startswith("truncated or corrupt")


def test_on_error_other_than_raise_or_skip_is_refused(resnet18):
    with pytest.raises(EmbedrtError, match="on_error='ignore'"):
        resnet18.embed([photo("coffee")], on_error="ignore")


def test_nan_from_the_engine_names_the_image_by_index_and_path(resnet18_dir, tmp_path):
    # A real ONNX graph in a real export dir, built to give NaN on dark images: log of the mean
    # normalised pixel, which is negative for a black image (ImageNet normalisation puts 0 at about -2).
    import dataclasses
    import shutil

    import onnx
    from onnx import TensorProto, helper

    import embedrt
    from embedrt.errors import OutputError
    from embedrt.export.staging import model_file_record
    from embedrt.manifest import MODEL_NAME, read_manifest, write_manifest
    from embedrt.runtime.image.embedder import IMAGE_INPUT, IMAGE_OUTPUT

    export = tmp_path / "nan-on-dark"
    shutil.copytree(resnet18_dir, export)
    manifest = read_manifest(export)
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", [IMAGE_INPUT], ["mean"]), helper.make_node("Flatten", ["mean"], ["flat"]),
         helper.make_node("Log", ["flat"], ["log"]), helper.make_node("MatMul", ["log", "spread"], [IMAGE_OUTPUT])],
        "nan_on_dark",
        [helper.make_tensor_value_info(IMAGE_INPUT, TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info(IMAGE_OUTPUT, TensorProto.FLOAT, ["batch", manifest.dim])],
        [helper.make_tensor("spread", TensorProto.FLOAT, [3, manifest.dim], [1.0] * (3 * manifest.dim))],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(export / MODEL_NAME))
    write_manifest(export, dataclasses.replace(manifest, model_file=model_file_record(export / MODEL_NAME)))
    white = write(tmp_path / "white.png", np.full((64, 64, 3), 255, dtype=np.uint8))
    black = write(tmp_path / "black.png", np.zeros((64, 64, 3), dtype=np.uint8))
    embedder = embedrt.load(export, verify="off")  # the self-check on load would refuse this graph before embed could
    assert np.isfinite(embedder.embed([white])).all()
    with pytest.raises(OutputError, match=r"NaN or Inf for images\[1\] .*black\.png \(1 input\(s\) in all\)"):
        embedder.embed([white, black, white])


# -- every hostile input to ImageEmbedder.embed (issue 11, class 4) ----------------------------------------
@pytest.mark.parametrize(
    "images, message",
    [
        (None, r"images must be a list, not NoneType; wrap one image in a list"),
        (7, r"images must be a list, not int"),
        ({"cat": "cat.png"}, r"images is a dict; iterating it would embed its keys"),
        ({"cat.png", "dog.png"}, r"images is a set, which has no order to return rows in"),
        (b"\x89PNG", r"not a single bytes; wrap one image in a list"),
        (np.zeros((2, 8, 8, 3), dtype=np.uint8), r"not a single ndarray; wrap one image in a list \(or pass list\(array\)"),
    ],
)
def test_what_is_not_a_list_of_images_is_refused_saying_what_to_pass(resnet18, images, message):
    with pytest.raises(InputError, match=message):
        resnet18.embed(images)


def test_a_generator_of_images_gives_the_rows_of_the_same_list(resnet18):
    images = [photo("coffee"), photo("rocket")]
    assert np.abs(resnet18.embed(im for im in images) - resnet18.embed(images)).max() == 0


def test_text_given_to_an_image_export_says_it_is_an_image_export(resnet18):
    with pytest.raises(InputError, match=r"images\[0\] a photo of a cat: no such file; this is an image export: give image files"):
        resnet18.embed(["a photo of a cat"])
    long_text = "word " * 2000  # longer than a file name may be
    with pytest.raises(InputError, match=r"images\[0\] word word .*\.\.\.\(10,000 characters\): unreadable \(File name too long\); this is an image export"):
        resnet18.embed([long_text])


@pytest.mark.parametrize(
    "item, message",
    [
        ("", r"images\[0\] : an empty path"),
        ("bad\x00name.png", r"images\[0\] bad\x00name\.png: not a usable file name \(embedded null byte\)"),
        ("lone\ud800.png", r"images\[0\] lone\\ud800\.png: not a usable file name"),
        (Image.new("RGB", (0, 0)), r"images\[0\] <PIL image RGB 0x0>: 0x0: an image with no pixels"),
        (np.zeros((0, 5, 3), dtype=np.uint8), r"images\[0\] <array \(0, 5, 3\) uint8>: 5x0: an image with no pixels"),
        (Image.new("La", (8, 8)), r"images\[0\] <PIL image La 8x8>: cannot convert mode La to RGB"),
    ],
)
def test_unusable_names_and_empty_images_are_named_and_printable(resnet18, item, message):
    with pytest.raises(InputError, match=message) as caught:
        resnet18.embed([item])
    str(caught.value).encode("utf-8")  # a lone surrogate in a path is escaped, so the message can be printed


def test_an_image_export_from_a_text_model_says_to_export_text(minilm_source, minilm_dir):
    from embedrt.errors import ExportError
    from embedrt.export.image.source import read_image_source

    with pytest.raises(ExportError, match=r"model_type 'bert'; image export supports HF 'resnet'.*it is a text model .*`embedrt export text "):
        read_image_source(minilm_source)
    with pytest.raises(ExportError, match=r"'default' is the bundled text model; export it with `embedrt export text default`"):
        read_image_source("default")
    with pytest.raises(ExportError, match=r"an embedrt export dir already \(it has embedrt\.json\)"):
        read_image_source(minilm_dir)
