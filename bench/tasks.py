"""Forensic tasks: how each class of patch is made from a pristine photograph.

A task entry returns a :class:`Task`. Manipulation tasks give, for every photograph, one
whole-image version per class (class 0 is the pristine photograph itself); the dataset builder
cuts every version at the same locations, so a location yields one patch per class with the
same scene. Manipulations are applied to the whole photograph before patches are cut, and every
version is an 8-bit image, as a forensic analyst would receive it.

``camera-sim`` on a folder whose sub-folders are camera models (the Dresden layout) switches to
labelled photographs: each photograph gives patches of its own class only, and the split is
stratified by class.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Annotated, Callable, Literal, Mapping, Sequence

import numpy as np

from bench.errors import BenchError
from bench.registry import Registry, at_least, greater_than

Manipulation = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class TaskInfo:
    """Frozen description of a task entry."""

    description: str
    classes: tuple[str, ...]
    channels: int = 1
    reference: str = ""


@dataclass(frozen=True)
class Task:
    """A built task.

    Either ``manipulations`` (one per class after the pristine class 0; each maps a uint8 image
    and a seeded generator to a uint8 image) or ``photo_labels`` (photo name -> class, one
    example per photograph) is used.
    """

    classes: tuple[str, ...]
    channels: int
    manipulations: tuple[Manipulation, ...] = ()
    photo_labels: Mapping[str, int] | None = None
    colour_only: bool = False
    pristine_class: bool = True  # False: every class is a manipulation of the photograph (camera-sim)

    def examples(self, photo: str, image: np.ndarray, rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
        """(label, whole image) pairs that this photograph contributes."""
        if self.photo_labels is not None:
            return [(self.photo_labels[photo], image)]
        versions = [m(image, rng) for m in self.manipulations]
        if self.pristine_class:
            versions.insert(0, image)
        return list(enumerate(versions))


TASKS: Registry[Task] = Registry("task", modules=(), group="forensic_bench.tasks", context=("photos",))
register_task = TASKS.register
create_task = TASKS.create
list_tasks = TASKS.names


# -- manipulations (whole image, uint8 in and out) ---------------------------------------------------
def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def median(size: int) -> Manipulation:
    """Median filter of a given window size."""
    from scipy.ndimage import median_filter

    return lambda image, rng: median_filter(image, size=(size, size) + (1,) * (image.ndim - 2), mode="reflect")


def gaussian_blur(sigma: float) -> Manipulation:
    """Gaussian low-pass filter."""
    from scipy.ndimage import gaussian_filter

    return lambda image, rng: _to_uint8(
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
    lut = _to_uint8(255.0 * (np.arange(256) / 255.0) ** gamma)
    return lambda image, rng: lut[image]


def histogram_equalisation() -> Manipulation:
    """Global histogram equalisation (scikit-image), back to 8 bits."""
    from skimage.exposure import equalize_hist

    return lambda image, rng: _to_uint8(255.0 * equalize_hist(image, nbins=256))


def gaussian_noise(sigma_255: float) -> Manipulation:
    """Additive white Gaussian noise of standard deviation sigma_255 grey levels, rounded to 8 bits."""
    return lambda image, rng: _to_uint8(image + rng.normal(0.0, sigma_255, size=image.shape))


def _binary(name: str, manipulation: Manipulation) -> Task:
    return Task(("pristine", name), 1, (manipulation,))


# -- binary manipulation-detection tasks --------------------------------------------------------------
_MEDIAN_REF = "Kirchner & Fridrich, SPIE 2010; Chen, Ni, Huang & Wang, 'Median filtering forensics based on CNNs', IEEE SPL 2015"


@register_task("median3", info=TaskInfo("pristine vs 3x3 median-filtered grayscale patches", ("pristine", "median3"), reference=_MEDIAN_REF))
def median3() -> Task:
    """3x3 median filtering detection."""
    return _binary("median3", median(3))


@register_task("median5", info=TaskInfo("pristine vs 5x5 median-filtered grayscale patches", ("pristine", "median5"), reference=_MEDIAN_REF))
def median5() -> Task:
    """5x5 median filtering detection."""
    return _binary("median5", median(5))


@register_task("blur", info=TaskInfo("pristine vs Gaussian-blurred grayscale patches", ("pristine", "blur"),
                                     reference="Bayar & Stamm, IEEE TIFS 2018"))  # fmt: skip
def blur(*, sigma: Annotated[float, greater_than(0.0)] = 1.0) -> Task:
    """Gaussian blur detection."""
    return _binary("blur", gaussian_blur(sigma))


@register_task("resample", info=TaskInfo(
    "pristine vs bilinearly rescaled grayscale patches (scale > 1: up-scaled then cropped; < 1: down-scaled)",
    ("pristine", "resample"), reference="Popescu & Farid, IEEE TSP 2005; Bayar & Stamm, IEEE TIFS 2018"))  # fmt: skip
def resample(*, scale: Annotated[float, greater_than(0.0)] = 1.5) -> Task:
    """Resampling detection (use resample[scale=0.8] for down-scaling)."""
    if scale == 1.0:
        raise BenchError("resample: scale=1.0 is no manipulation; use a scale != 1")
    return _binary("resample", rescale(scale))


@register_task("jpeg", info=TaskInfo(
    "never-compressed vs once JPEG-compressed (PIL) grayscale patches; note: the built-in hubble_deep_field, "
    "retina and rocket photographs were JPEG files to begin with", ("pristine", "jpeg"),
    reference="Barni et al., 'Aligned and non-aligned double JPEG detection using CNNs', JVCIR 2017"))  # fmt: skip
def jpeg_task(*, quality: Annotated[int, at_least(1)] = 75) -> Task:
    """JPEG compression detection."""
    if quality > 100:
        raise BenchError(f"jpeg: quality={quality} is not allowed; quality must be an integer from 1 to 100")
    return _binary("jpeg", jpeg(quality))


@register_task("gamma", info=TaskInfo("pristine vs gamma-corrected grayscale patches (contrast enhancement)",
                                      ("pristine", "gamma"), reference="Stamm & Liu, IEEE TIFS 2010"))  # fmt: skip
def gamma(*, gamma: Annotated[float, greater_than(0.0)] = 0.7) -> Task:
    """Contrast enhancement detection: gamma correction."""
    return _binary("gamma", gamma_correction(gamma))


@register_task("histeq", info=TaskInfo("pristine vs histogram-equalised grayscale patches (contrast enhancement)",
                                       ("pristine", "histeq"), reference="Stamm & Liu, IEEE TIFS 2010"))  # fmt: skip
def histeq() -> Task:
    """Contrast enhancement detection: global histogram equalisation."""
    return _binary("histeq", histogram_equalisation())


@register_task("noise", info=TaskInfo("pristine vs additive-Gaussian-noise grayscale patches (sigma in grey levels)",
                                      ("pristine", "noise"), reference="Bayar & Stamm, IEEE TIFS 2018"))  # fmt: skip
def noise(*, sigma: Annotated[float, greater_than(0.0)] = 2.0) -> Task:
    """White Gaussian noise detection; sigma 2 grey levels = 2/255."""
    return _binary("noise", gaussian_noise(sigma))


# -- multi-class --------------------------------------------------------------------------------------
_ID_CLASSES = ("pristine", "median5", "blur", "noise", "resample", "jpeg")


@register_task("manipulation-id", info=TaskInfo(
    "6 classes: pristine, 5x5 median, Gaussian blur (sigma 1), noise (sigma 2/255), bilinear x1.5, JPEG 75 "
    "(Bayar & Stamm's universal manipulation detection)", _ID_CLASSES,
    reference="Bayar & Stamm, 'Constrained convolutional neural networks...', IEEE TIFS 13(11), 2018"))  # fmt: skip
def manipulation_id() -> Task:
    """Which of five manipulations (or none) was applied."""
    return Task(_ID_CLASSES, 1, (median(5), gaussian_blur(1.0), gaussian_noise(2.0), rescale(1.5), jpeg(75)))


# -- camera-model identification ---------------------------------------------------------------------
@dataclass(frozen=True)
class Pipeline:
    """A simulated in-camera processing chain applied to a colour photograph."""

    cfa: Literal["RGGB", "GRBG", "GBRG", "BGGR"]
    demosaic: Literal["bilinear", "malvar", "menon"]
    gamma: float
    quality: int

    @property
    def name(self) -> str:
        return f"{self.cfa}-{self.demosaic}-g{self.gamma:g}-q{self.quality}"

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        import colour_demosaicing as cd

        linear = (image.astype(np.float64) / 255.0) ** 2.2  # undo the photograph's own encoding
        mosaic = cd.mosaicing_CFA_Bayer(linear, self.cfa)
        method = {"bilinear": cd.demosaicing_CFA_Bayer_bilinear, "malvar": cd.demosaicing_CFA_Bayer_Malvar2004,
                  "menon": cd.demosaicing_CFA_Bayer_Menon2007}[self.demosaic]  # fmt: skip
        rgb = np.clip(method(mosaic, self.cfa), 0.0, 1.0) ** (1.0 / self.gamma)
        return jpeg(self.quality)(_to_uint8(255.0 * rgb), rng)


PIPELINES: tuple[Pipeline, ...] = (
    Pipeline("RGGB", "bilinear", 2.2, 95),
    Pipeline("GRBG", "bilinear", 2.2, 85),
    Pipeline("RGGB", "malvar", 1.8, 90),
    Pipeline("BGGR", "menon", 2.4, 80),
)


@register_task("camera-sim", info=TaskInfo(
    "SIMULATED camera pipelines, not real cameras: colour 64x64 patches, one class per CFA x demosaicing x gamma x "
    "JPEG chain (4 classes) applied to the colour photographs; with --images on a folder of camera-model "
    "sub-folders (Dresden layout) it is real camera-model identification, one class per sub-folder",
    tuple(p.name for p in PIPELINES), channels=3,
    reference="Bondi et al., 'First steps toward camera model identification with CNNs', IEEE SPL 2017; "
    "Gloe & Boehme, 'The Dresden image database', ACM SAC 2010"))  # fmt: skip
def camera_sim(*, photos: Sequence[str] = ()) -> Task:
    """Camera-model identification (simulated pipelines, or real models from a Dresden-style folder)."""
    if photos and all("/" in p for p in photos):
        models = sorted({p.split("/", 1)[0] for p in photos})
        if len(models) < 2:
            raise BenchError(f"camera-sim: --images holds one camera-model folder ({models[0]}); at least 2 are needed")
        return Task(tuple(models), 3, photo_labels={p: models.index(p.split("/", 1)[0]) for p in photos})
    return Task(tuple(p.name for p in PIPELINES), 3, PIPELINES, colour_only=True, pristine_class=False)
