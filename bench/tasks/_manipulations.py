"""Whole-image manipulations shared by the task entries (uint8 in, uint8 out)."""

from __future__ import annotations

import io

import numpy as np

from bench.tasks import Manipulation


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Round and clip to 8-bit levels."""
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def median(size: int) -> Manipulation:
    """Median filter of a given window size."""
    from scipy.ndimage import median_filter

    return lambda image, rng: median_filter(image, size=(size, size) + (1,) * (image.ndim - 2), mode="reflect")


def gaussian_blur(sigma: float) -> Manipulation:
    """Gaussian low-pass filter."""
    from scipy.ndimage import gaussian_filter

    return lambda image, rng: to_uint8(
        gaussian_filter(image.astype(np.float64), sigma=(sigma, sigma) + (0,) * (image.ndim - 2), mode="reflect")
    )


def rescale(scale: float) -> Manipulation:
    """Bilinear rescaling of the whole photograph (PIL); up-scaled images are cropped back to the
    original size, down-scaled ones stay smaller (patches are cut where every version has pixels)."""
    from PIL import Image

    def apply(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        out = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        return out[:h, :w]

    return apply


def jpeg(quality: int) -> Manipulation:
    """One JPEG compression at a quality factor (PIL/libjpeg, 4:2:0 for colour), decoded back."""
    from PIL import Image

    def apply(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        return np.asarray(Image.open(buffer))

    return apply


def gamma_correction(gamma: float) -> Manipulation:
    """Gamma correction of 8-bit values: 255 * (x / 255) ** gamma."""
    lut = to_uint8(255.0 * (np.arange(256) / 255.0) ** gamma)
    return lambda image, rng: lut[image]


def histogram_equalisation() -> Manipulation:
    """Global histogram equalisation (scikit-image), back to 8 bits."""
    from skimage.exposure import equalize_hist

    return lambda image, rng: to_uint8(255.0 * equalize_hist(image, nbins=256))  # type: ignore[no-untyped-call]


def gaussian_noise(sigma_255: float) -> Manipulation:
    """Additive white Gaussian noise of standard deviation sigma_255 grey levels, rounded to 8 bits."""
    return lambda image, rng: to_uint8(image + rng.normal(0.0, sigma_255, size=image.shape))
