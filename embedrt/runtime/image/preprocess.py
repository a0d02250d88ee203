"""Decoding and preprocessing of one image: the only module that imports Pillow (the `image` extra).

Any input (path, bytes, PIL image, HWC uint8 array) becomes an RGB image with its EXIF
orientation applied, then the tensor torchvision's standard transform would give:
Resize(shorter side, antialiased) -> CenterCrop -> ToTensor -> Normalize, in float32 CHW.
"""

from __future__ import annotations

import errno
import io
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from embedrt.errors import EmbedrtError, InputError, ManifestError
from embedrt.manifest import ImagePreprocessing

try:
    from PIL import Image, ImageOps, UnidentifiedImageError
except ImportError as exc:  # the one import site of the optional dependency
    raise EmbedrtError("image embeddings need Pillow: pip install 'embedrt[image]'.") from exc

# Names the manifest records -> Pillow's filters (Pillow resizes with antialiasing, as torchvision does on PIL images).
RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
_EXIF_ORIENTATION = 0x0112
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")

DEFAULT_MAX_PIXELS = 100_000_000  # 10,000 x 10,000 (300 MB as RGB); Pillow only warns up to 179M, a 420 KB PNG can hold 144M
_SPACE = re.compile(r"\s")
_NAME_CHARS = 120  # a path longer than this is shortened in messages (a whole text passed as a path)

ImageInput = Any  # str | os.PathLike | bytes | PIL.Image.Image | np.ndarray


def describe(item: ImageInput) -> str:
    """How an input is named in messages: its path (printable, shortened), or its kind."""
    if isinstance(item, (str, os.PathLike)):
        name = os.fsdecode(item) if not isinstance(item, str) else item
        if len(name) > _NAME_CHARS:
            name = f"{name[:_NAME_CHARS // 2]}...({len(name):,} characters)"
        return name.encode("utf-8", "backslashreplace").decode("utf-8")  # an undecodable file name still prints
    if isinstance(item, (bytes, bytearray, memoryview)):
        return f"<{item.nbytes if isinstance(item, memoryview) else len(item)} bytes>"
    if isinstance(item, np.ndarray):
        return f"<array {item.shape} {item.dtype}>"
    if isinstance(item, Image.Image):
        return f"<PIL image {item.mode} {item.size[0]}x{item.size[1]}>"
    return f"<{type(item).__name__}>"


def open_image(item: ImageInput, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """An RGB PIL image, EXIF orientation applied. Raises InputError with the reason (not the index)."""
    if isinstance(item, (str, os.PathLike)):
        image = _decode(_read_file(item), max_pixels)
    elif isinstance(item, (bytes, bytearray, memoryview)):
        image = _decode(bytes(item), max_pixels)
    elif isinstance(item, Image.Image):
        image = item
    elif isinstance(item, np.ndarray):
        image = _from_array(item)
    else:
        raise InputError(f"unsupported type {type(item).__name__}; give a path, bytes, a PIL image or an HWC uint8 numpy array")
    _check_size(image.width, image.height, max_pixels)
    return _to_rgb(_upright(image))


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise InputError(f"{width}x{height}: an image with no pixels")
    if width * height > max_pixels:
        raise InputError(
            f"{width}x{height} = {width * height:,} pixels, more than max_pixels={max_pixels:,} (a decompression bomb, or a "
            "very large picture); downscale it, or raise the limit, e.g. ImageEmbedder(path, max_pixels=N)"
        )


def _read_file(item: str | os.PathLike) -> bytes:
    if os.fspath(item) in ("", b""):
        raise InputError("an empty path; give an image file's path")
    try:
        data = Path(item).read_bytes()
    except FileNotFoundError:
        raise InputError("no such file" + _text_hint(item)) from None
    except IsADirectoryError:
        raise InputError("is a directory, not an image file") from None
    except OSError as exc:
        hint = _text_hint(item) if exc.errno == errno.ENAMETOOLONG else ""
        raise InputError(f"unreadable ({exc.strerror or exc}){hint}") from None
    except ValueError as exc:  # a NUL character, or a lone surrogate the file system cannot encode
        raise InputError(f"not a usable file name ({exc})") from None
    if not data:
        raise InputError("empty file (0 bytes)")
    return data


def _text_hint(item: str | os.PathLike) -> str:
    """For a str that reads like text, not a path: say that this is an image model."""
    name = os.fspath(item)
    if not isinstance(name, str) or _SPACE.search(name) is None or Path(name[:255]).suffix.lower() in Image.registered_extensions():
        return ""
    return "; this is an image export: give image files, bytes, PIL images or arrays (text needs a text export)"


def _decode(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise InputError("empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InputError("not an image Pillow can read (unknown format)") from None
    except Image.DecompressionBombError as exc:
        raise InputError(f"too many pixels for Pillow ({exc}); to take it, raise PIL.Image.MAX_IMAGE_PIXELS as well as max_pixels") from None
    _check_size(image.width, image.height, max_pixels)  # from the header, before decoding a bomb
    try:
        image.load()  # decode now: truncation and corruption surface here, not later
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"truncated or corrupt {image.format or 'image'} data ({exc})") from None
    return image


def _from_array(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8:
        raise InputError(f"array dtype {array.dtype}; give uint8 pixels (0-255)")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(array), mode="L")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(array), mode="RGB" if array.shape[2] == 3 else "RGBA")
    raise InputError(f"array shape {array.shape}; give HxWx3 (RGB), HxWx4 (RGBA) or HxW (grey)")


def _upright(image: Image.Image) -> Image.Image:
    """Honour the EXIF orientation tag (a copy only when the tag asks for a turn)."""
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a malformed EXIF block is not worth failing the image for
        return image
    return ImageOps.exif_transpose(image) if orientation in range(2, 9) else image


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        # Pillow's convert() clips 16-bit values at 255 (a white image); scale 0-65535 to 0-255 instead.
        wide = np.asarray(image).astype(np.float32)
        image = Image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8), mode="L")
    elif image.mode == "F":
        raise InputError("32-bit float pixels (mode F) have no standard range; convert the image to 8-bit first")
    try:
        return image.convert("RGB")  # RGBA/LA: alpha dropped; P, L, 1, CMYK, YCbCr: converted
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot convert mode {image.mode} to RGB ({exc})") from None


def resized_size(width: int, height: int, shorter: int) -> tuple[int, int]:
    """torchvision's Resize(int): the shorter side becomes `shorter`, the longer one is scaled and truncated."""
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(shorter * long / short)
    return (shorter, new_long) if width <= height else (new_long, shorter)


def centre_box(width: int, height: int, crop: int) -> tuple[int, int, int, int]:
    """torchvision's CenterCrop offsets (it rounds half to even)."""
    top = int(round((height - crop) / 2.0))
    left = int(round((width - crop) / 2.0))
    return left, top, left + crop, top + crop


def pixel_values(image: Image.Image, prep: ImagePreprocessing) -> np.ndarray:
    """float32 (3, crop, crop): resize, centre crop, rescale, normalise, channels first."""
    size = resized_size(image.width, image.height, prep.resize)
    if size[0] * size[1] > (Image.MAX_IMAGE_PIXELS or float("inf")):  # a 1x10000 strip would become 256x2560000
        raise InputError(
            f"{image.width}x{image.height}: too elongated; resizing its shorter side to {prep.resize} gives "
            f"{size[0]}x{size[1]} pixels, past Pillow's limit of {Image.MAX_IMAGE_PIXELS}"
        )
    if size != image.size:
        image = image.resize(size, resample=RESAMPLE[prep.interpolation])
    image = image.crop(centre_box(image.width, image.height, prep.crop))
    array = np.asarray(image, dtype=np.float32)
    if prep.channel_order == "BGR":
        array = array[:, :, ::-1]
    mean = np.asarray(prep.mean, dtype=np.float32)
    std = np.asarray(prep.std, dtype=np.float32)
    array = (array * np.float32(prep.rescale_factor) - mean) / std
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def load_pixels(item: ImageInput, prep: ImagePreprocessing, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """One input -> the model's float32 (3, crop, crop) tensor."""
    try:
        return pixel_values(open_image(item, max_pixels), prep)
    except InputError:
        raise
    except MemoryError:
        raise InputError("too large to decode in memory") from None
    except Exception as exc:  # Pillow parses untrusted bytes and raises many types (struct.error, EOFError...) on malformed ones
        raise InputError(f"cannot be processed ({type(exc).__name__}: {exc})") from None


def check_preprocessing(prep: ImagePreprocessing, where: str) -> None:
    """Refuse a preprocessing section this runtime cannot reproduce."""
    if prep.interpolation not in RESAMPLE:
        raise ManifestError(f"{where}: interpolation {prep.interpolation!r} is not one of {', '.join(RESAMPLE)}.")
    if prep.channel_order not in ("RGB", "BGR"):
        raise ManifestError(f"{where}: channel_order {prep.channel_order!r} is neither RGB nor BGR.")
    if prep.crop > prep.resize:
        raise ManifestError(f"{where}: crop {prep.crop} is larger than the resize {prep.resize}.")
