"""Adapters over Foolbox 3, one file per attack."""
