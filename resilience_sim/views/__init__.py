"""Plots and dashboards: the only layer that imports matplotlib and ipywidgets."""
