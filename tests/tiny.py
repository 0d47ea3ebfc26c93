"""A matrix small enough to run in seconds: one task, one narrow detector trained for one epoch on
a few hundred patches, one attack whose images are kept (so every kind of cache entry exists:
dataset, model, cell rows, samples and images, probe, transfer pair)."""

from __future__ import annotations

from typing import Any


def tiny_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "profile": "tiny",
        "seed": 0,
        "n_samples": 16,
        "tasks": ["median3"],
        "detectors": ["srm[width=4]"],
        "defenses": ["none"],
        "attacks": ["foolbox.fgsm"],
        "epsilons_255": [2],
        "data": {"max_train_locations": 600, "max_eval_locations": 200},
        "training": {"epochs": 1, "max_train_patches": 256},
    }
    doc.update(overrides)
    return doc


TINY_TOML = """\
profile = "tiny"
seed = 0
n_samples = 16
tasks = ["median3"]
detectors = ["srm[width=4]"]
defenses = ["none"]
attacks = ["foolbox.fgsm"]
epsilons_255 = [2]

[data]
max_train_locations = 600
max_eval_locations = 200

[training]
epochs = 1
max_train_patches = 256
"""
