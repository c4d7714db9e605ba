"""The course's labs: the checks each lab calls, one module per lab (the learner's copies are
generated from the solutions by ``python tools/generate_labs.py``)."""
