"""The core layer: what every other layer builds on and that imports nothing of the project above it.

Registries and canonical names (registry), content keys and code fingerprints (fingerprint),
atomic writes (cache), table schemas (schema), intervals (stats), typed settings (config),
errors, package versions, torch devices (devices) and running a detector on images (inference).
"""
