"""The sweep runner: a scenario over a grid of parameters and many seeds, on any executor.

Lifecycle of a sweep: plan every run (its point, replicate and derived seed), then run them, in
this process one after the other (``executor=None``) or as futures on any
``concurrent.futures.Executor`` (a process pool, ``dask.distributed``'s ``client.get_executor()``),
at most ``in_flight`` tasks ahead; take results as they complete, and put each row in its place.

What always holds:

* the rows depend on the scenario, the grid, the seeds and ``base_seed`` only: never on the
  executor, the number of workers, ``batch`` or the order runs finish in;
* a stopped sweep keeps what it finished: interrupt it (Ctrl-C, the kernel's stop button) and the
  pending runs are cancelled and the table of the finished ones is returned with ``complete``
  False (``on_interrupt="raise"``: raised inside a :class:`SweepInterrupted`); a scenario that
  raises stops the sweep with a :class:`SweepFailed` that names the point and seed to rerun alone,
  and holds the finished rows too;
* misuse is refused before anything runs: an empty grid, ``seeds < 1``, a sweep over ``max_runs``,
  a scenario that does not take the grid's names and ``seed=`` as keywords, or that a process pool
  cannot pickle, and an executor that is not an Executor.
"""
from __future__ import annotations

import concurrent.futures as cf
import inspect
import numbers
import os
import pickle
import signal
import time
import traceback
import warnings
from collections import deque
from collections.abc import Mapping

from ..core import validate
from ..metrics.sweeps import RUN_COLUMNS, SweepTable
from .plan import MAX_RUNS, Plan, make_plan
from .progress import SweepProgress, reporter


class SweepFailed(RuntimeError):
    """A run of the scenario raised: ``run`` is the one (its params and seed), ``table`` the rows
    finished before the sweep stopped."""

    def __init__(self, message: str, *, table: SweepTable, run=None):
        super().__init__(message)
        self.table, self.run = table, run


class SweepInterrupted(KeyboardInterrupt):
    """Raised by ``sweep(..., on_interrupt="raise")`` when interrupted; ``table`` holds the finished rows."""

    def __init__(self, table: SweepTable):
        super().__init__(f"sweep interrupted: {len(table):,} of {table.total:,} runs finished (in .table)")
        self.table = table


class RunFailed(Exception):
    """Sent back by a task whose run raised: the run's index, the runs of its batch that finished
    first, and the error as text (a traceback does not travel between processes)."""

    def __init__(self, index: int, finished: list, text: str):
        super().__init__(index, finished, text)
        self.index, self.finished, self.text = index, finished, text


# --- what runs on a worker --------------------------------------------------------------------------
def run_batch(scenario, batch) -> list:
    """Run each ``(index, params, seed)`` of ``batch``: ``[(index, summary, seconds), ...]``."""
    out = []
    for index, params, seed in batch:
        t0 = time.perf_counter()
        try:
            summary = _summary(scenario(seed=seed, **params))
        except Exception as exc:
            raise RunFailed(index, out, "".join(traceback.format_exception(exc))) from exc
        out.append((index, summary, time.perf_counter() - t0))
    return out


def _summary(value) -> dict:
    """The scenario's summary with plain values (numpy scalars unwrapped: small to send, the same
    everywhere)."""
    example = "e.g. {'availability': 0.99, 'failed': False}"
    if not isinstance(value, Mapping) or not value:
        raise validate.WrongType(f"a scenario must return a small summary, a dict of metric names to numbers or "
                                 f"True/False ({example}); got {validate.show(value)}")
    out = {}
    for name, v in value.items():
        if not isinstance(name, str) or not name:
            raise validate.WrongType(f"metric names must be non-empty strings, got {validate.show(name)}")
        if validate._is_bool(v):
            out[name] = bool(v)
        elif isinstance(v, numbers.Integral):
            out[name] = int(v)
        elif isinstance(v, numbers.Real):
            out[name] = float(v)
        else:
            hint = " (return float('nan') for 'no value')" if v is None else ""
            raise validate.WrongType(f"metric {name!r} must be a number or True/False, got {validate.show(v)}{hint}; "
                                     f"a scenario returns a small summary ({example}), not whole results")
    return out


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def process_pool(workers: int = 2) -> cf.ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` of ``workers`` processes that ignore Ctrl-C and the kernel's stop
    button: interrupting a sweep then stops it here (the finished rows kept) and leaves the pool
    usable. Use it in a ``with`` block, which shuts it down."""
    workers = validate.integer("workers", workers, low=1, high=max(61, 4 * (os.cpu_count() or 1)))
    return cf.ProcessPoolExecutor(max_workers=workers, initializer=_ignore_interrupts)


# --- checks -------------------------------------------------------------------------------------------
def _name(scenario) -> str:
    return getattr(scenario, "__qualname__", None) or type(scenario).__name__


def _check_scenario(scenario, params: tuple) -> None:
    validate.function("scenario", scenario)
    try:
        sig = inspect.signature(scenario)
    except (TypeError, ValueError):          # a builtin without a signature: let it run
        return
    try:
        sig.bind(seed=0, **{p: None for p in params})
    except TypeError as exc:
        wanted = ", ".join(params)
        raise validate.WrongType(
            f"scenario must take the grid's parameters{f' ({wanted})' if params else ''} and seed= as keywords, "
            f"e.g. def {_name(scenario)}({wanted + ', ' if params else ''}*, seed): ...; "
            f"{_name(scenario)}{sig} does not ({exc})") from None


def _check_executor(executor, scenario) -> None:
    if executor is None:
        return
    if not isinstance(executor, cf.Executor):
        hint = " (for a Dask client pass client.get_executor())" if hasattr(executor, "get_executor") else ""
        raise validate.WrongType(f"executor must be a concurrent.futures.Executor (ProcessPoolExecutor(2), "
                                 f"process_pool(2), a Dask client's get_executor()) or None to run here{hint}, "
                                 f"got {validate.show(executor)}")
    if isinstance(executor, cf.ProcessPoolExecutor):
        try:
            pickle.dumps(scenario)
        except Exception as exc:
            raise validate.WrongType(
                f"scenario must be picklable to run on a ProcessPoolExecutor: a function defined at the top "
                f"level of a module (a lesson module, a .py file), not a lambda, a nested function or a "
                f"closure; {_name(scenario)} is not ({type(exc).__name__}: {exc})") from None


def _workers(executor) -> int:
    client = getattr(executor, "_client", None)                  # dask.distributed's ClientExecutor
    if client is not None and hasattr(client, "nthreads"):
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:                                       # pragma: no cover (a client gone away)
            pass
    return getattr(executor, "_max_workers", None) or os.cpu_count() or 2


# --- the sweep ----------------------------------------------------------------------------------------
#: With ``batch=None`` on an executor: about this many tasks per worker (fewer, longer tasks cost a
#: scheduler like Dask's less; more keep the workers evenly busy to the end), at most MAX_BATCH runs a task.
TASKS_PER_WORKER, MAX_BATCH = 25, 20


def sweep(scenario, grid=None, *, seeds=10, base_seed: int = 0, executor=None, progress="auto",
          batch: int | None = None, in_flight: int | None = None, max_runs: int = MAX_RUNS,
          on_interrupt: str = "return") -> SweepTable:
    """Run ``scenario(**point, seed=seed)`` at every point of ``grid``, ``seeds`` times each, and
    return the runs as a :class:`~resilience_sim.metrics.sweeps.SweepTable`.

    * ``scenario``: a function of the grid's parameters and ``seed=`` that returns a small summary,
      a dict of metric names to numbers or True/False (``{"after": 0.97, "failed": False}``). To run
      on a process pool or a cluster it must be importable there: define it in a module.
    * ``grid``: ``{"load": [0.5, 0.6], "trigger": [1, 2]}`` (every combination, in that order), a
      list of dicts (those points), or None (one point, no parameters).
    * ``seeds``: runs per point, each with a seed derived from (``base_seed``, the point, the
      replicate); or a list of seeds used at every point (common random numbers).
    * ``executor``: None runs here, one run after another; any ``concurrent.futures.Executor`` runs
      the sweep on it (``process_pool(2)``, ``ProcessPoolExecutor``, ``client.get_executor()`` of
      dask.distributed), ``batch`` runs a task (by default about 25 tasks a worker, at most 20 runs
      each) and at most ``in_flight`` tasks ahead (by default 4 per worker). The executor stays
      yours: the sweep never shuts it down.
    * ``progress``: "auto" (a bar once the sweep has run a second: a widget in a notebook, text
      elsewhere), True (at once), False, "text", "widget", or a function called with a
      :class:`SweepProgress` at the start and after each finished run.
    * ``on_interrupt``: "return" the finished rows (``table.complete`` is False, with a warning) or
      "raise" a :class:`SweepInterrupted` holding them.
    """
    plan = make_plan(grid, seeds, base_seed, max_runs)
    _check_scenario(scenario, plan.params)
    _check_executor(executor, scenario)
    validate.choice("on_interrupt", on_interrupt, ("return", "raise"))
    workers = _workers(executor) if executor is not None else 1
    if batch is None:
        batch = 1 if executor is None else max(1, min(MAX_BATCH, len(plan.runs) // (TASKS_PER_WORKER * workers)))
    batch = validate.integer("batch", batch, low=1, high=max(1, len(plan.runs)))
    if in_flight is None:
        in_flight = max(8, 4 * workers) if executor is not None else 1
    in_flight = validate.integer("in_flight", in_flight, low=1)
    return _Sweep(scenario, plan, executor, reporter(progress), batch, in_flight, on_interrupt).run()


class _Sweep:
    """One sweep while it runs: what has finished, and the table it makes."""

    def __init__(self, scenario, plan: Plan, executor, report, batch: int, in_flight: int, on_interrupt: str):
        self.scenario, self.plan, self.executor, self.report = scenario, plan, executor, report
        self.batch, self.in_flight, self.on_interrupt = batch, in_flight, on_interrupt
        self.summaries: dict[int, dict] = {}
        self.run_seconds = 0.0
        self.t0 = time.perf_counter()

    # results
    def _state(self) -> SweepProgress:
        return SweepProgress(len(self.summaries), len(self.plan.runs), time.perf_counter() - self.t0)

    def _take(self, finished, *, report: bool = True) -> None:
        for index, summary, seconds in finished:
            self.summaries[index] = summary
            self.run_seconds += seconds
        if report and self.report is not None and finished:
            self.report.update(self._state())

    def table(self, complete: bool) -> SweepTable:
        runs = self.plan.runs
        order = sorted(self.summaries)
        metrics = tuple(self.summaries[order[0]]) if order else ()
        clash = set(metrics) & (set(self.plan.params) | set(RUN_COLUMNS))
        if clash:
            raise ValueError(f"the scenario's metrics {sorted(clash)} have the name of a parameter or of the "
                             f"table's own columns {RUN_COLUMNS}: rename them in its summary")
        rows = []
        for index in order:
            summary, run = self.summaries[index], runs[index]
            if set(summary) != set(metrics):
                first = runs[order[0]]
                raise ValueError(f"the scenario must return the same metrics every run: at {first.params} "
                                 f"seed {first.seed} it returned {sorted(metrics)}, at {run.params} seed "
                                 f"{run.seed} {sorted(summary)}")
            rows.append((run.point, run.replicate, run.seed, tuple(summary[m] for m in metrics)))
        return SweepTable(self.plan.params, self.plan.points, rows, metrics=metrics, total=len(runs),
                          complete=complete, elapsed=time.perf_counter() - self.t0, run_seconds=self.run_seconds,
                          executor="in-process" if self.executor is None else type(self.executor).__name__,
                          scenario=f"{getattr(self.scenario, '__module__', '')}.{_name(self.scenario)}")

    # running
    def _batches(self) -> deque:
        work = [(r.index, r.params, r.seed) for r in self.plan.runs]
        return deque(tuple(work[i:i + self.batch]) for i in range(0, len(work), self.batch))

    def run(self) -> SweepTable:
        pending: dict = {}
        if self.report is not None:
            self.report.update(self._state())
        try:
            if self.executor is None:
                self._here()
            else:
                self._on_executor(pending)
        except KeyboardInterrupt:
            return self._stopped(pending)
        except BaseException:
            self._cancel(pending)
            if self.report is not None:
                self.report.close(self._state(), False)
            raise
        table = self.table(complete=True)
        if self.report is not None:
            self.report.close(self._state(), True)
        return table

    def _here(self) -> None:
        for work in self._batches():
            try:
                self._take(run_batch(self.scenario, work))
            except RunFailed as failed:
                self._failed(failed, failed.__cause__)

    def _on_executor(self, pending: dict) -> None:
        queue = self._batches()
        while queue or pending:
            while queue and len(pending) < self.in_flight:
                work = queue.popleft()
                try:
                    pending[self.executor.submit(run_batch, self.scenario, work)] = work
                except RuntimeError as exc:
                    raise RuntimeError(f"the executor refused the sweep's runs ({exc}): is it shut down? "
                                       "Make a new one, or pass executor=None to run here") from exc
            done, _ = cf.wait(pending, timeout=0.5, return_when=cf.FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: pending[f][0][0]):   # a failure: the first in grid order
                work = pending.pop(future)
                if future.cancelled():
                    raise RuntimeError(f"the executor cancelled runs {work[0][0]}-{work[-1][0]} (was it shut "
                                       "down, or its cluster closed?)")
                exc = future.exception()
                if isinstance(exc, KeyboardInterrupt):                      # a worker got the interrupt
                    raise KeyboardInterrupt
                if isinstance(exc, RunFailed):
                    self._failed(exc, exc)
                if exc is not None:
                    raise SweepFailed(f"the executor lost runs {work[0][0]}-{work[-1][0]}: "
                                      f"{type(exc).__name__}: {exc} (did a worker process die?); the "
                                      f"{len(self.summaries):,} finished runs are in this error's .table",
                                      table=self.table(complete=False)) from exc
                self._take(future.result())

    def _failed(self, failed: RunFailed, cause) -> None:
        self._take(failed.finished)
        run = self.plan.runs[failed.index]
        args = ", ".join([*(f"{k}={v!r}" for k, v in run.params.items()), f"seed={run.seed}"])
        last = failed.text.strip().splitlines()[-1] if failed.text.strip() else "an error"
        where = "" if cause is not None and cause is not failed else f"\n\nThe run's traceback:\n{failed.text}"
        raise SweepFailed(f"the scenario failed at {run.params or 'the only point'} (replicate {run.replicate}, "
                          f"seed {run.seed}): {last}. Rerun it alone: {_name(self.scenario)}({args}). The "
                          f"{len(self.summaries):,} finished runs are in this error's .table{where}",
                          table=self.table(complete=False), run=run) from (cause if cause is not failed else None)

    @staticmethod
    def _cancel(pending: dict) -> None:
        for future in pending:
            future.cancel()

    def _stopped(self, pending: dict) -> SweepTable:
        self._cancel(pending)
        for future in list(pending):            # runs that finished meanwhile are kept, nothing waited for
            if future.done() and not future.cancelled() and future.exception() is None:
                self._take(future.result(), report=False)       # a callback that stopped us is not asked again
        table = self.table(complete=False)
        if self.report is not None:
            self.report.close(self._state(), False)
        if self.on_interrupt == "raise":
            raise SweepInterrupted(table)
        warnings.warn(f"sweep interrupted: {len(table):,} of {table.total:,} runs finished; the table keeps "
                      "them (table.complete is False)", RuntimeWarning, stacklevel=4)
        return table


__all__ = ["sweep", "process_pool", "run_batch", "SweepFailed", "SweepInterrupted", "SweepProgress", "RunFailed",
           "MAX_RUNS"]
