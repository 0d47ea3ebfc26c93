"""What happens to adversarial images on their way to a forensic detector: 8-bit files, JPEG.

An attack's float32 output is not an image anyone can publish. Every adversarial image is also
rounded to 8-bit levels (staying inside its budget and [0, 1], see
:func:`bench.attacks.base.quantize`) and scored again, and the 8-bit image is JPEG-compressed
at qualities 95, 85 and 75 with PIL (Pillow's libjpeg, 4:4:4 for colour, no optimisation
passes: deterministic) and scored again. Each combination is a *variant* of a cell, recorded in
the ``quantized`` (float / uint8) and ``postprocess`` (none / jpeg95 / jpeg85 / jpeg75) columns.

In a post-processed variant everything is judged as the detector sees it: its clean accuracy is
on the post-processed clean images, and a sample is robust when the detector is right on both
the post-processed clean image and the post-processed adversarial image.

Each variant also carries how visible its images are, PSNR and SSIM against the clean images
(bench/run/quality.py): the float variant's of the attack's float images, the others' of the 8-bit
images. The JPEG variants, like their norms, measure the 8-bit image before compression: the image
the attacker publishes, whose visibility is the attack's; JPEG's own change of the image is not.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bench.attacks.base import AttackBudgetError, AttackResult, norms, quantize, within
from bench.core.inference import predict
from bench.run.quality import sweep_quality

if TYPE_CHECKING:
    import torch
    from torch import nn

JPEG_QUALITIES = (95, 85, 75)
VARIANTS = (("float", "none"), ("uint8", "none"), *(("uint8", f"jpeg{q}") for q in JPEG_QUALITIES))


@dataclass(frozen=True)
class Variant:
    """Predictions on one variant of a cell's clean and adversarial images."""

    quantized: str  # float | uint8
    postprocess: str  # none | jpeg95 | jpeg85 | jpeg75
    clean_pred: np.ndarray  # (N,)
    adv_pred: np.ndarray  # (E, N)
    linf: np.ndarray  # (E, N) perturbation of the (quantized) adversarial image before post-processing
    l2: np.ndarray  # (E, N)
    psnr: np.ndarray  # (E, N) dB, of the same image against the clean one; inf where it is the clean one
    ssim: np.ndarray  # (E, N) likewise; 1 where it is the clean one

    def adv_correct(self, y: np.ndarray) -> np.ndarray:
        """(E, N): right on the variant's clean image and on its adversarial image."""
        correct: np.ndarray = (self.clean_pred == y)[None] & (self.adv_pred == y[None])
        return correct


def jpeg(images: np.ndarray, quality: int) -> np.ndarray:
    """JPEG-compress and decode float images (N, C, H, W) on the 8-bit grid; C is 1 or 3.

    Rounding to 8 bits and scaling back are whole-stack array operations (the same values as
    image by image); only PIL's encoder and decoder run once per image."""
    from PIL import Image

    grey = images.shape[1] == 1
    pixels = np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)
    planes = pixels[:, 0] if grey else pixels.transpose(0, 2, 3, 1)  # PIL's layouts: H x W, H x W x C
    decoded = np.empty_like(planes)
    for i, plane in enumerate(planes):
        buffer = io.BytesIO()
        Image.fromarray(plane).save(buffer, format="JPEG", quality=int(quality), subsampling=0)
        buffer.seek(0)
        with Image.open(buffer) as pil:
            decoded[i] = np.asarray(pil)
    stack = decoded[:, None] if grey else decoded.transpose(0, 3, 1, 2)
    out: np.ndarray = stack.astype(np.float32) / 255.0
    return out


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample: whether two stacks of images differ anywhere."""
    changed: np.ndarray = (a != b).reshape(len(a), -1).any(axis=1)
    return changed


def new_images(stack: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which images of an (E, N, ...) sweep differ from ``base`` (E, N), and which of those are new
    (E, N): different from the previous epsilon's image too. A sweep stores, at a larger epsilon,
    the very image found at a smaller one for every sample already fooled, and the clean image
    for samples never fooled: only new images need scoring."""
    changed = np.stack([_changed(stack[k], base) for k in range(len(stack))])
    new = changed.copy()
    for k in range(1, len(stack)):
        new[k] &= _changed(stack[k], stack[k - 1])
    return changed, new


def spread(scored: np.ndarray, changed: np.ndarray, new: np.ndarray, base_pred: np.ndarray) -> np.ndarray:
    """(E, N) predictions of a sweep from the predictions on its new images (``scored``, in the
    order of ``np.nonzero(new)``): an unchanged image has the base's prediction, a repeated one
    the previous epsilon's."""
    preds = np.empty(new.shape, dtype=np.int64)
    previous = base_pred
    start = 0
    for k in range(len(new)):
        pred = np.where(changed[k], previous, base_pred)
        count = int(new[k].sum())
        pred[new[k]] = scored[start : start + count]
        start += count
        preds[k] = previous = pred
    return preds


def variants(model: nn.Module, result: AttackResult, who: str, *, device: torch.device | None = None) -> list[Variant]:
    """Score a finished attack's images as floats, as 8-bit images and after JPEG compression
    (on ``device``, where the model is; ``None``: wherever it is). The new images of all epsilons
    are scored in one batched pass per variant."""
    x, eps = result.x, result.epsilons
    float_psnr, float_ssim = sweep_quality(result.x_adv, x, *new_images(result.x_adv, x))
    out = [Variant("float", "none", result.clean_pred, result.adv_pred, result.linf, result.l2, float_psnr, float_ssim)]
    quantized = np.stack([quantize(result.x_adv[k], x, float(e), result.norm) for k, e in enumerate(eps)])
    for k, e in enumerate(eps):  # the 8-bit images must respect the budget too
        size = norms(quantized[k].astype(np.float64) - x, result.norm)
        if not within(size, float(e)).all() or quantized[k].min() < 0 or quantized[k].max() > 1:
            raise AttackBudgetError(f"{who}: an 8-bit adversarial image left its budget at eps={e:.6g}")
    delta = (quantized - x[None]).reshape(len(eps), len(x), -1).astype(np.float64)
    linf, l2 = np.abs(delta).max(axis=2), np.sqrt((delta * delta).sum(axis=2))
    changed, new = new_images(quantized, x)
    psnr, ssim = sweep_quality(quantized, x, changed, new)
    images = quantized[new]  # every epsilon's new 8-bit images, in np.nonzero(new) order
    adv_pred = spread(predict(model, images, device=device), changed, new, result.clean_pred)
    out.append(Variant("uint8", "none", result.clean_pred, adv_pred, linf, l2, psnr, ssim))
    for quality in JPEG_QUALITIES:
        clean_pred = predict(model, jpeg(x, quality), device=device)
        adv_pred = spread(predict(model, jpeg(images, quality), device=device), changed, new, clean_pred)
        out.append(Variant("uint8", f"jpeg{quality}", clean_pred, adv_pred, linf, l2, psnr, ssim))
    return out
