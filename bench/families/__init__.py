"""A corpus of training curves from many model families, labelled by objective checks.

Unlike bench/corpus (lrlab's own tasks, one recipe per condition), every curve here comes
from a plain torch loop of the kind users run elsewhere and post as an external run, and
its label comes from evidence the analyzer never sees: reference runs of the same setup
at other learning rates or with a bigger model, a test split, per-layer gradient norms.
Scored by leaving whole families out (bench/families/score.py).
"""
