"""Adapters over the Adversarial Robustness Toolbox (ART), one file per attack."""
