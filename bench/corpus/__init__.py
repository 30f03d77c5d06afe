"""The analyzer's corpus of real training curves, labelled by how they were made.

Every curve comes from lrlab's own trainer (workers.runner.train) run on a recipe whose
settings cause one condition (a far too high lr, a tiny training set, a deep sigmoid
stack, ...); the label is the recipe's, never the analyzer's. The files under
tests/corpus/ are generated data; regenerate (resumable: existing curves are kept) with

    .venv/bin/python -m bench.corpus.generate            # all recipes
    .venv/bin/python -m bench.corpus.generate --only divergence/text

and score the analyzer on them with `.venv/bin/python bench/analyzer_quality.py`.
"""
