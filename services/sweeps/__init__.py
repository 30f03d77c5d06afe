"""Sweep use cases: submit work, create lazy trials, prune, settle `lr: auto`, range tests."""
