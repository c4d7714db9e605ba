"""The simulated world, the only layer that imports simpy: world, services, clients, faults, workloads."""
