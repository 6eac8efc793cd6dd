"""Evaluation: HTER and threshold rules, scoring a model on the labelled parts, figures, the
results table and the choice of variant."""
