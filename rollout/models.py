"""Evaluation datasets, promotion gates and the evaluations measured per version."""
