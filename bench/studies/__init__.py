"""The studies layer: measurements built on runs and their outputs - the forensic zoo (zoo.py) and
the cost of attacks and defences (costs.py)."""
