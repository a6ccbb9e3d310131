"""Analyses: model + batch + config -> tidy DataFrames (and the hooks they attach)."""
