"""Permits: which allowed call a result belongs to (the circuit breaker's books).

A breaker hands out one :class:`Permit` per allowed call, stamped with the *period* it was allowed
in (a period ends at every change of state). When a result comes back, its permit says which period
it belongs to: a result from an earlier period is late, whatever the state now. :class:`Ledger`
counts the permits outstanding per period.

What holds: every permit is resolved at most once, and only by the ledger that issued it (either
misuse is a ``ValueError``); the counts per period equal the permits issued minus those resolved.
A caller that cannot pass the permit back (code written for ``allow() -> bool``) resolves "one of
them": the oldest period outstanding for a result (calls come back roughly in the order they went
out), the newest for a cancel (a cancel usually follows its ``allow`` at once).
"""
from __future__ import annotations


class Permit:
    """One allowed call. Truthy, and equal to True (so ``allow(now) == True`` and code written for a
    bool keep working); two permits are told apart with ``is``."""
    __slots__ = ("ledger", "period", "probe", "at", "done")

    def __init__(self, ledger, period: int, probe: bool, at: float):
        self.ledger, self.period, self.probe, self.at, self.done = ledger, period, probe, at, False

    def __bool__(self):
        return True

    def __eq__(self, other):
        return other is self or other is True

    def __ne__(self, other):
        return not (other is self or other is True)

    def __hash__(self):
        return 1                                   # hash(True), as equality with True demands

    def __repr__(self):
        return f"Permit({'probe' if self.probe else 'closed'}, at={self.at:g})"


class Ledger:
    """Permits outstanding: a count for the current period (the common case, kept cheap) and a dict
    {period: count} for the earlier periods that still have some."""
    __slots__ = ("period", "current", "older")

    def __init__(self):
        self.period, self.current, self.older = 0, 0, {}

    def issue(self, probe: bool, at: float) -> Permit:
        self.current += 1
        return Permit(self, self.period, probe, at)

    def next_period(self) -> None:
        if self.current:
            self.older[self.period] = self.current
        self.period, self.current = self.period + 1, 0

    def resolve(self, permit, oldest: bool):
        """Mark ``permit`` resolved (or, for ``None``, the oldest or newest outstanding); return its
        period: ``None`` if nothing was outstanding, -1 if the permit's place was already taken by a
        resolution without a permit (it then counts as late)."""
        older = self.older
        if permit is None:
            if older and (oldest or not self.current):
                period = min(older) if oldest else max(older)
            elif self.current:
                period = self.period
            else:
                return None
        else:
            if permit.__class__ is not Permit or permit.ledger is not self:
                raise ValueError(f"permit must be what this breaker's allow() returned, got {permit!r}")
            if permit.done:
                raise ValueError(f"permit {permit!r} was already recorded or cancelled: resolve each call once")
            permit.done, period = True, permit.period
        if period == self.period:
            if not self.current:
                return -1
            self.current -= 1
        else:
            n = older.get(period, 0)
            if not n:
                return -1
            if n == 1:
                del older[period]
            else:
                older[period] = n - 1
        return period


__all__ = ["Permit", "Ledger"]
