"""Numbers only: validation, outcomes and reasons, distributions, load profiles, records, timelines
and theory. Imports nothing else of the package, and neither simpy, matplotlib nor ipywidgets."""
