"""Collections of pristine photographs: the built-in ones and a user's folder.

Built-in photographs are the natural photographs bundled inside scikit-image (no download,
ever); ``--images DIR`` points at a user's own pristine collection instead. A source is the
list of files and a digest of their bytes, which is what the dataset keys use: finding the
files computes no number.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import BenchError

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm")

# Natural photographs shipped in scikit-image's data folder. Left out: synthetic images
# (chessboards, color wheel, logo, phantom, text, page scan, horse silhouette), images too
# small for more than one patch (microaneurysms, lfw faces) and motorcycle_right, the
# stereo twin of motorcycle_left (near-duplicates in two splits would leak).
BUILTIN_PHOTOS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "cell.png",
    "chelsea.png",
    "clock_motion.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "moon.png",
    "motorcycle_left.png",
    "retina.jpg",
    "rocket.jpg",
)


@dataclass(frozen=True)
class ImageSource:
    """A collection of pristine photographs: (name, path) pairs and a digest of their bytes."""

    label: str
    files: tuple[tuple[str, Path], ...]

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 over every file's name and content (part of the dataset cache key; computed once)."""
        h = hashlib.sha256()
        for name, path in self.files:
            h.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        return h.hexdigest()


def builtin_source() -> ImageSource:
    """The natural photographs bundled with scikit-image."""
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    files = tuple((p.stem, folder / p) for p in map(Path, BUILTIN_PHOTOS) if (folder / p).is_file())
    if len(files) < 3:
        raise BenchError(
            f"scikit-image's data folder {folder} holds {len(files)} of the built-in photographs; at least 3 are needed"
        )
    return ImageSource("skimage", files)


def folder_source(folder: str | Path, where: str = "--images") -> ImageSource:
    """Every image under ``folder`` (recursively) with an allowed suffix, sorted by path; ``where``
    names the option in the errors (the CLI's flag; ``bench.api`` passes its argument, ``images``)."""
    root = Path(folder)
    if not root.is_dir():
        raise BenchError(
            f"{where} {folder}: not a directory; give a folder of pristine images ({', '.join(IMAGE_SUFFIXES)})"
        )
    files = tuple(
        (p.relative_to(root).with_suffix("").as_posix(), p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if len(files) < 3:
        raise BenchError(
            f"{where} {folder}: found {len(files)} images; at least 3 are needed (one per split), with suffixes {', '.join(IMAGE_SUFFIXES)}"
        )
    _check_images(files, where)
    return ImageSource(root.resolve().name, files)


def _check_images(files: tuple[tuple[str, Path], ...], where: str) -> None:
    """Refuse a folder holding a file that is not a readable image, before any work (a file
    that passes here and fails to decode later is still refused in one line, bench/inputs/data.py)."""
    from PIL import Image, UnidentifiedImageError

    for _, path in files:
        try:
            with Image.open(path) as image:
                image.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            raise BenchError(f"{where}: cannot read image {path}: {err}") from None
