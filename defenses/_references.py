"""Paper references shared by several defence entries (kept out of defenses/__init__.py, which every
trained model's key follows: a corrected citation re-keys only the entries that cite it)."""

ZHAO2018 = (
    "Zhao, Yang, Ni, Zhao & Wu, 'Security consideration for deep learning-based image forensics', "
    "IEICE Trans. Inf. & Syst. E101-D(12), 2018"
)
