"""Metric use cases: external runs, metric names, live feeds and downsampled reads."""
