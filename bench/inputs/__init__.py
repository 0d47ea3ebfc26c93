"""The inputs layer: matrix files (what to run) and the datasets of pristine photographs (what to run it on)."""
