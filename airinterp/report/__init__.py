"""Figures and reports: DataFrames in, plotly figures and self-contained HTML out."""
