"""How visible an adversarial image is: PSNR and SSIM against its clean image (scikit-image's metrics).

Anti-forensics papers report these beside the norms. Both are scikit-image's own functions
(``skimage.metrics``) on images in [0, 1] (``data_range=1``): PSNR in dB; SSIM with its defaults
(7 x 7 uniform window, K1 = 0.01, K2 = 0.03), per channel and averaged over the channels of a
colour patch. An image equal to its clean one has PSNR ``inf`` and SSIM 1, as scikit-image defines
them; they are written so, without calling it.

A sweep repeats images across its epsilons (a sample fooled at a smaller epsilon keeps that image;
a minimum-norm attack's image is the clean one below the sample's norm, bench/attacks/base.py), so
only the *new* images of a sweep are measured (bench/run/postprocess.py, ``new_images``), one call per image (an SSIM batched over the
whole stack with scipy's filters was slower than these calls on 64 x 64 patches).
"""

from __future__ import annotations

import numpy as np


def psnr_ssim(adv: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """PSNR (dB) and SSIM of one image (C, H, W, values in [0, 1]) against its clean version,
    computed in float64."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a, c = np.asarray(adv, dtype=np.float64), np.asarray(clean, dtype=np.float64)
    if np.array_equal(a, c):
        return float("inf"), 1.0
    psnr = peak_signal_noise_ratio(c, a, data_range=1.0)  # type: ignore[no-untyped-call]
    if a.shape[0] == 1:
        ssim = structural_similarity(c[0], a[0], data_range=1.0)  # type: ignore[no-untyped-call]
    else:
        ssim = structural_similarity(c, a, data_range=1.0, channel_axis=0)  # type: ignore[no-untyped-call]
    return float(psnr), float(ssim)


def sweep_quality(
    stack: np.ndarray, x: np.ndarray, changed: np.ndarray, new: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(E, N) PSNR and SSIM of a sweep's images ``stack`` (E, N, C, H, W) against the clean ``x``
    (N, C, H, W), measuring only the ``new`` ones: an unchanged image (``changed`` False) has
    ``inf`` and 1, a repeated one its previous epsilon's values."""
    psnr = np.full(changed.shape, np.inf, dtype=np.float64)
    ssim = np.ones(changed.shape, dtype=np.float64)
    for k in range(len(stack)):
        if k:
            repeated = changed[k] & ~new[k]
            psnr[k, repeated], ssim[k, repeated] = psnr[k - 1, repeated], ssim[k - 1, repeated]
        for i in np.flatnonzero(new[k]):
            psnr[k, i], ssim[k, i] = psnr_ssim(stack[k, i], x[i])
    return psnr, ssim
