"""The live part: the course's policies protecting real HTTP calls on 127.0.0.1, in wall-clock time.

Local services with HTTP-level faults (:mod:`.services`), a Toxiproxy-compatible fault-injecting
TCP proxy (:mod:`.proxy`), a resilient httpx client driven by the very policy objects the simulator
uses (:mod:`.client`), a bounded load generator whose records feed the same
:class:`~resilience_sim.metrics.results.Results` (:mod:`.load`), and the Part IV outbox on SQLite
(:mod:`.outbox`). This layer imports core, policies and metrics, never simpy; every server binds
127.0.0.1 only, and every start has a stop that leaves no thread, socket or descriptor behind.
"""
