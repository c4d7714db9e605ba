"""Resilience policies: plain state machines that take ``now`` (and a ``random.Random`` where they
draw) and return decisions. They never sleep, start threads or touch global randomness, so the
simulator (simulated time), the live httpx client (``time.monotonic()``) and the tests (plain numbers)
drive the very same objects. Each records what it did in counters (exact) and in bounded logs for
plots (:class:`~resilience_sim.core.eventlog.EventLog`: the newest ``log_limit`` entries, 10,000 by
default, read like lists; ``on_event=`` exports every entry as it happens, say to live metrics).

Composition order, from the outside in (one logical request, top to bottom):

1. **Deadline**: started when the request starts; every layer below reads what is left of it, and
   a dependency is handed ``child(now, reserve)``, so nobody works for a caller who gave up.
2. **Retry** with backoff, asking the **retry budget** before each retry: the loop is bounded by
   ``max_attempts``, by the deadline (a wait that would outlast it is refused) and, across all of
   this client's requests, by the budget, which stops retry storms from multiplying load.
3. **Adaptive throttle** (client side), asked before *every* attempt, first thing: each attempt is a
   request the backend must handle, so each one is asked for and each one sent is recorded (the SRE
   book's K bound then holds with retries too; see :class:`AdaptiveThrottle`). A throttled attempt
   fails fast locally and is not retried ("throttled" is not in the default retry_on). An attempt
   it let through that a layer below refuses (breaker, bulkhead) was never sent: ``throttle.cancel``.
4. **Circuit breaker**: inside the retry loop, so it counts every attempt, and an attempt it
   rejects ("circuit open") fails fast and is not retried blindly (not in the default retry_on).
   Its permit goes with the attempt: ``record(..., permit=p)`` or ``cancel(now, permit=p)``.
5. **Rate limit** (client side, a TokenBucket): inside the breaker, as Resilience4j puts its
   RateLimiter; a refused attempt is never sent ("rate limited": ``breaker.cancel``, no failure).
6. **Bulkhead**: inside the breaker, so a call the breaker rejects never takes or waits for a slot;
   a bulkhead refusal is our own congestion, not the dependency's: ``breaker.cancel``, no failure.
7. **Per-attempt timeout**: ``countdown.attempt_timeout(now, per_attempt)``, started once the slot
   is held, bounds each attempt (and never outlasts the deadline); a timeout is recorded as a
   failure at the breaker and is a retryable reason.
8. **Hedging**: innermost, the copies race within one attempt's time limit; the first answer ends
   the attempt and the caller cancels the rest.
9. The call. On the server: **token bucket** per client and **load shedder** before the queue.

Every policy that keeps state reads ``now`` as finite seconds that never go back, and belongs to one
run: the simulator claims each one for its ``World`` (:func:`claim`; several clients of one world
may share a policy, a second world is refused) and ``reset()`` makes it as new (:mod:`._state`).
Arguments are checked where they come in (times, durations >= 0, whole counts, booleans that are
``True``/``False``), at the cost of a comparison on the good path.

Resilience4j's documented default aspect order for its Spring Boot annotations (docs, "Getting
Started", aspect order) is Retry, then CircuitBreaker, RateLimiter, TimeLimiter and Bulkhead around
the function. We agree on retry outside the breaker and on the client-side rate limit just inside it
(item 5). We differ in two ways: our per-attempt timeout sits inside the bulkhead (its TimeLimiter sits
outside, so its timeout also covers the bulkhead wait; ours bounds that wait by ``max_wait`` and the
deadline); and we add client throttling (per attempt, outside the breaker), a retry budget, an overall
deadline and hedging, which it does not have as layers. A rate limit on the server (a token bucket per
client, item 9) is admission control there, a separate layer from the client's own.

Name clash: ``Constant`` and ``Exponential`` here are backoff schedules, not the workload profile or
the distribution of the top-level package; import them as ``ConstantBackoff``/``ExponentialBackoff``
next to those.
"""
from .backoff import Backoff, Constant, DecorrelatedJitter, EqualJitter, Exponential, FullJitter
from ._state import Stateful, claim
from .cache import Cache, Lookup
from .fallback import FallbackChain, Static
from .jobs import JobQueue
from .messaging import Delivery, MessageQueue
from .idempotency import IdempotencyKeys
from .alerts import BurnRateRule, ThresholdRule
from .saga import Saga, SagaStep
from .breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, Permit
from .budget import AdaptiveThrottle, RetryBudget
from .bulkhead import Bulkhead
from .hedging import HedgePolicy, delay_from_percentile
from .ratelimit import LoadShedder, TokenBucket
from .retry import RETRYABLE, RetryPolicy
from .timeouts import Countdown, Deadline, Timeout

ConstantBackoff = Constant
ExponentialBackoff = Exponential

__all__ = [
    "Timeout", "Deadline", "Countdown",
    "Backoff", "Constant", "Exponential", "ConstantBackoff", "ExponentialBackoff",
    "FullJitter", "EqualJitter", "DecorrelatedJitter",
    "RetryPolicy", "RETRYABLE", "RetryBudget", "AdaptiveThrottle",
    "CircuitBreaker", "Permit", "CLOSED", "OPEN", "HALF_OPEN",
    "Bulkhead", "TokenBucket", "LoadShedder", "HedgePolicy", "delay_from_percentile",
    "Cache", "Lookup", "FallbackChain", "Static", "JobQueue",
    "MessageQueue", "Delivery", "IdempotencyKeys", "ThresholdRule", "BurnRateRule",
    "Saga", "SagaStep",
    "Stateful", "claim",
]
