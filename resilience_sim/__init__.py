"""resilience_sim: a discrete-event simulator (on simpy) of services, faults, workloads and the
resilience patterns that keep them up, with metrics, plots and dashboards for the course."""
from .client import Client
from .distributions import Distribution, Exponential, Fixed, LogNormal, Mixture, Uniform, Weibull
from .faults import (ErrorBurst, FailureRepair, GrayFailure, LatencySpike, Outage, Partition,
                     RepairCrew)
from .metrics import Results
from .records import Outcome
from .service import Request, Service, ServiceError
from .workload import ClosedLoop, Constant, OpenLoop, Ramp, Spike, Step
from .world import World

__all__ = [
    "World", "Service", "Client", "ServiceError", "Request", "Outcome", "Results",
    "Distribution", "Fixed", "Exponential", "LogNormal", "Uniform", "Weibull", "Mixture",
    "FailureRepair", "RepairCrew", "Outage", "LatencySpike", "ErrorBurst", "GrayFailure", "Partition",
    "OpenLoop", "ClosedLoop", "Constant", "Ramp", "Step", "Spike",
]
