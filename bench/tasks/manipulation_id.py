"""Universal manipulation detection: which of five manipulations (or none) was applied."""

from __future__ import annotations

from bench.tasks import Task, TaskInfo, register_task
from bench.tasks._manipulations import gaussian_blur, gaussian_noise, jpeg, median, rescale

CLASSES = ("pristine", "median5", "blur", "noise", "resample", "jpeg")


@register_task(
    "manipulation-id",
    info=TaskInfo(
        "6 classes: pristine, 5x5 median, Gaussian blur (sigma 1), noise (sigma 2/255), bilinear x1.5, JPEG 75 "
        "(Bayar & Stamm's universal manipulation detection)",
        CLASSES,
        reference="Bayar & Stamm, 'Constrained convolutional neural networks...', IEEE TIFS 13(11), 2018",
    ),
)
def manipulation_id() -> Task:
    """Which of five manipulations (or none) was applied."""
    return Task(CLASSES, 1, (median(5), gaussian_blur(1.0), gaussian_noise(2.0), rescale(1.5), jpeg(75)))
