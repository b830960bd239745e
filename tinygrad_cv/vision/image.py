"""Images in and out: every image in the library is a uint8 array of shape (H, W, 3), RGB.

Files come in many kinds (grayscale, RGBA, palette, 16-bit, rotated by an EXIF tag): ``load_image``
and ``to_rgb_uint8`` turn all of them into that one form, so the rest of the code has a single case
to handle. ``save_image`` writes atomically, so an interrupted run never leaves a broken file.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tinygrad_cv.io.cache import atomic_write

PathLike = Union[str, Path]
ImageLike = Union[Image.Image, np.ndarray]
WHITE = (255, 255, 255)  # transparent pixels are shown over white, as a viewer would


def load_image(path: PathLike, max_side: Optional[int] = None) -> np.ndarray:
    """Read an image file as uint8 RGB, upright, optionally shrunk.

    Args:
        path: any format Pillow reads (PNG, JPEG, BMP, TIFF, WebP, ...).
        max_side: if given, shrink (never enlarge) so that the longer side is at most this.

    Returns:
        uint8 array of shape (H, W, 3).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not an image Pillow can read, or has more pixels than Pillow's
            decompression-bomb limit.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    try:
        with warnings.catch_warnings():
            # Above Image.MAX_IMAGE_PIXELS Pillow only warns (an error from twice that): a file that
            # big is a decompression bomb or needs shrinking first, so both become one clear error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img = ImageOps.exif_transpose(img)  # phones store rotation as a tag, not in the pixels
                rgb = to_rgb_uint8(img)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ValueError(f"{path} has more pixels than Pillow's safety limit of {Image.MAX_IMAGE_PIXELS} "
                         "(Image.MAX_IMAGE_PIXELS, against decompression bombs); shrink it first") from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:  # Pillow raises these on bad data
        raise ValueError(f"{path} is not an image that can be read ({exc})") from exc
    return rgb if max_side is None else resize_max_side(rgb, max_side)


def to_rgb_uint8(image: ImageLike) -> np.ndarray:
    """Any PIL image or array of pixels -> uint8 (H, W, 3) RGB.

    Accepts PIL images of every mode and arrays shaped (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) of
    dtype uint8 or uint16 (16-bit values are scaled to 8 bits). Alpha is composited over white.
    """
    if isinstance(image, Image.Image):
        return _pil_to_rgb(image)
    array = np.asarray(image)
    if array.dtype == np.uint16:
        array = _to_8bit(array)
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 (or uint16) image array, got dtype {array.dtype}; "
                         "convert floats in [0, 1] with (x * 255).round().astype(np.uint8)")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    if array.shape[2] == 4:
        return _pil_to_rgb(Image.fromarray(array, "RGBA"))
    return np.ascontiguousarray(array)


def _to_8bit(array: np.ndarray) -> np.ndarray:
    """16-bit values 0..65535 -> 0..255; 65535 / 255 = 257 maps white to white exactly."""
    return np.round(np.clip(array, 0, 65535) / 257.0).astype(np.uint8)


def _pil_to_rgb(img: Image.Image) -> np.ndarray:
    """Convert one PIL image of any mode to an RGB array."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):  # 16-bit grayscale (PNG, TIFF)
        return to_rgb_uint8(_to_8bit(np.asarray(img)))
    if img.mode == "P":  # palette: its transparency, if any, becomes an alpha channel
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        background = Image.new("RGBA", img.size, WHITE + (255,))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    return np.array(img.convert("RGB"), dtype=np.uint8)


def resize(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resample a uint8 (H, W, 3) image to ``size = (height, width)`` (Lanczos filter)."""
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise ValueError(f"resize: size must be positive, got {size}")
    rgb = to_rgb_uint8(image)
    if rgb.shape[:2] == (height, width):
        return rgb
    resized = Image.fromarray(rgb).resize((width, height), Image.Resampling.LANCZOS)  # PIL: (W, H)
    return np.asarray(resized)


def resize_max_side(image: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink (never enlarge) so the longer side is at most ``max_side``, keeping the aspect ratio."""
    if max_side < 1:
        raise ValueError(f"max_side must be positive, got {max_side}")
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return to_rgb_uint8(image)
    return resize(image, (max(1, round(height * scale)), max(1, round(width * scale))))


def save_image(path: PathLike, image: np.ndarray) -> Path:
    """Write a uint8 image (H, W, 3), (H, W, 4) or (H, W) to ``path``; the format follows the suffix.

    The file is written under a temporary name and renamed when complete.
    """
    path = Path(path)
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"save_image expects uint8 pixels, got dtype {array.dtype} with shape "
                         f"{array.shape}; use model.deprocess(x) or (x * 255).round().astype(np.uint8)")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(f"save_image expects shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    file_format = Image.registered_extensions().get(path.suffix.lower())
    if file_format is None:
        raise ValueError(f"{path}: unknown image file extension {path.suffix!r} (use .png or .jpg)")
    img = Image.fromarray(np.ascontiguousarray(array))
    if file_format == "JPEG" and img.mode == "RGBA":
        img = Image.fromarray(_pil_to_rgb(img))  # JPEG has no alpha channel
    with atomic_write(path) as f:
        img.save(f, format=file_format)
    return path

