"""The course's labs: the checks each lab calls (one module per lab) and the generator of the
learner's copies (``python -m resilience_sim.labs.generate``)."""
