"""Evaluation: splits that say whether they leak, metrics, cross-validation protocols, reports."""
