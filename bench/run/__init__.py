"""The run layer: a matrix as a plan of jobs with content keys (plan.py), carried out by an executor
(execute.py) against the cache (store.py), with the stage functions that compute the numbers
(training.py, cells.py with postprocess.py, probes.py, scoring.py) and the tables derived from
them (tables.py: ensemble.py, flags.py, transfer.py)."""
