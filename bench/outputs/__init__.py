"""The outputs layer: everything made from a finished results folder, read through formats.py only.

Figures (figures.py), LaTeX tables (latex.py), the HTML report (report.py), the regression check
(check.py) and the results pages (pages.py); summary.py holds the shared summaries and labels.
Nothing here re-runs an attack or imports the run layer.
"""
