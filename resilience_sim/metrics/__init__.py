"""Results of a run and the metrics computed from its records; never sees a World or simpy."""
from .results import CacheStats, JobStats, ClientStats, FaultSpan, Results, ServiceStats

__all__ = ["Results", "ServiceStats", "ClientStats", "FaultSpan", "CacheStats", "JobStats"]
