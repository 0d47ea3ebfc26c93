"""Camera-model identification: simulated camera pipelines, or real camera models from a Dresden-style folder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from bench.core.errors import BenchError
from bench.tasks import Task, TaskInfo, register_task
from bench.tasks._manipulations import jpeg, to_uint8


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
        method = {
            "bilinear": cd.demosaicing_CFA_Bayer_bilinear,
            "malvar": cd.demosaicing_CFA_Bayer_Malvar2004,
            "menon": cd.demosaicing_CFA_Bayer_Menon2007,
        }[self.demosaic]
        rgb = np.clip(method(mosaic, self.cfa), 0.0, 1.0) ** (1.0 / self.gamma)
        return jpeg(self.quality)(to_uint8(255.0 * rgb), rng)


PIPELINES: tuple[Pipeline, ...] = (
    Pipeline("RGGB", "bilinear", 2.2, 95),
    Pipeline("GRBG", "bilinear", 2.2, 85),
    Pipeline("RGGB", "malvar", 1.8, 90),
    Pipeline("BGGR", "menon", 2.4, 80),
)


@register_task(
    "camera-sim",
    info=TaskInfo(
        "SIMULATED camera pipelines, not real cameras: colour 64x64 patches, one class per CFA x demosaicing x gamma x "
        "JPEG chain (4 classes) applied to the colour photographs; with --images on a folder of camera-model "
        "sub-folders (Dresden layout) it is real camera-model identification, one class per sub-folder",
        tuple(p.name for p in PIPELINES),
        channels=3,
        reference="Bondi et al., 'First steps toward camera model identification with CNNs', IEEE SPL 2017; "
        "Gloe & Boehme, 'The Dresden image database', ACM SAC 2010",
    ),
)
def camera_sim(*, photos: Sequence[str] = ()) -> Task:
    """Camera-model identification (simulated pipelines, or real models from a Dresden-style folder)."""
    if photos and all("/" in p for p in photos):
        models = sorted({p.split("/", 1)[0] for p in photos})
        if len(models) < 2:
            raise BenchError(f"camera-sim: --images holds one camera-model folder ({models[0]}); at least 2 are needed")
        return Task(tuple(models), 3, photo_labels={p: models.index(p.split("/", 1)[0]) for p in photos})
    return Task(tuple(p.name for p in PIPELINES), 3, PIPELINES, colour_only=True, pristine_class=False)
