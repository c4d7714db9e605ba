"""What every lab check shares: running the learner's code so that any failure becomes a message that
says what to do, and showing values and calls the way the learner wrote them."""
from __future__ import annotations

import contextlib
import functools
import io
import linecache
import math
import numbers
import os
import random
import signal
import sys
import threading
import tokenize
from collections import ChainMap, namedtuple
from contextlib import contextmanager
from time import monotonic as _monotonic      # bound now: lab 03's fake clocks patch time.monotonic

#: Seconds a single call of the learner's code may take before the check stops it and says so.
CALL_LIMIT_S = 2.0
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))     # resilience_sim/


def fmt(x) -> str:
    """A value as the learner would write it: whole numbers plain, others to 6 significant digits, a
    random generator as ``rng`` (the name the labs give it)."""
    if isinstance(x, bool) or x is None:
        return repr(x)
    if isinstance(x, random.Random):
        return "rng"
    if isinstance(x, numbers.Integral):
        return str(int(x))
    if isinstance(x, numbers.Real):
        x = float(x)
        if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-4):
            return f"{x:.4g}"
        return f"{x:.6g}"
    return repr(x)


def show(name: str, args) -> str:
    """A call as text: ``name(1, 0.5)``."""
    return f"{name}({', '.join(fmt(a) for a in args)})"


def ok(text: str) -> None:
    """The one line a passing check prints."""
    print(f"✔ {text}")


class TimedOut(AssertionError):
    """A check's message for learner code that did not return within its time limit."""


class _TimeUp(BaseException):
    """Raised inside the learner's code when its time is up: a BaseException, so that the learner's own
    ``except Exception`` does not swallow it."""


_limiting = threading.local()                 # .active: a limit is in force on this thread already


def _can_signal() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


class _TimeLimit:
    """``with _TimeLimit(seconds):`` raises :class:`_TimeUp` in the code inside if it takes longer than
    ``seconds``: with SIGALRM (an interval timer) on the main thread, where Jupyter kernels run cells
    and pytest runs tests, which also interrupts ``time.sleep``; on another thread by a step budget
    (``sys.settrace``), unless a tracer (a debugger, coverage) is installed, and then with no limit.
    The previous handler and timer are restored on the way out, the timer with the time it had left;
    within a limit already in force on the thread (nested calls) it leaves it to the outer one."""
    __slots__ = ("seconds", "mode", "armed", "previous", "old", "started", "deadline")

    def __init__(self, seconds):
        self.seconds, self.mode, self.armed = seconds, None, False

    def _expire(self, signum, frame):
        if self.armed:
            raise _TimeUp

    def _trace(self, frame, event, arg):
        if _monotonic() > self.deadline:
            raise _TimeUp
        return self._trace

    def __enter__(self):
        if self.seconds is None or getattr(_limiting, "active", False):
            return self
        if _can_signal():
            try:
                self.previous = signal.signal(signal.SIGALRM, self._expire)
            except (ValueError, OSError):             # not allowed here after all: no limit
                return self
            self.mode, self.armed, self.started = "signal", True, _monotonic()
            # after the first alarm, one every 0.25 s, in case the first lands in an `except BaseException`
            self.old = signal.setitimer(signal.ITIMER_REAL, self.seconds, 0.25)
        elif sys.gettrace() is None:
            self.mode, self.deadline = "trace", _monotonic() + self.seconds
            sys.settrace(self._trace)
        else:
            return self
        _limiting.active = True
        return self

    def __exit__(self, *exc):
        self.armed = False
        if self.mode == "signal":
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL if self.previous is None else self.previous)
            delay, interval = self.old
            if delay > 0:                             # someone else's timer: give it what is left
                left = delay - (_monotonic() - self.started)
                signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), interval)
        elif self.mode == "trace":
            sys.settrace(None)
        if self.mode is not None:
            _limiting.active = False
        return False


def _where(tb) -> str:
    """The line of the learner's code that was running when it was stopped (the innermost frame
    outside this package), as text, or ""."""
    line = ""
    while tb is not None:
        code = tb.tb_frame.f_code
        if not os.path.abspath(code.co_filename).startswith(_PACKAGE + os.sep):
            text = _without_comment(linecache.getline(code.co_filename, tb.tb_lineno).strip())
            line = text or line
        tb = tb.tb_next
    return line


def _without_comment(line: str) -> str:
    if "#" not in line:
        return line
    try:
        for token in tokenize.generate_tokens(io.StringIO(line).readline):
            if token.type == tokenize.COMMENT:
                return line[:token.start[1]].rstrip()
    except (tokenize.TokenError, SyntaxError):       # a line cut in the middle of a bracket, say
        pass
    return line


def _text(x) -> str:
    return x() if callable(x) else (x or "")


@contextmanager
def learner_code(name: str, call: str, hint=lambda exc: "", *, stuck="", limit=CALL_LIMIT_S):
    """Run the learner's code inside: a ``NotImplementedError`` becomes "``name`` is not written yet",
    any other exception "``call`` raised ...", followed by ``hint(exc)`` (text starting with its own
    punctuation, or ""). Code that runs longer than ``limit`` seconds is stopped: "``call`` did not
    return within ``limit`` s: ``stuck``" (a text, or a function giving it, on what may hang)."""
    try:
        with _TimeLimit(limit):
            yield
    except _TimeUp as exc:
        where = _where(exc.__traceback__)
        message = f"{call} did not return within {limit:g} s: {_text(stuck) or _STUCK}"
        if where:
            at, _, rest = message.partition("\n")
            message = f"{at} (It was stopped at `{where}`.)" + (f"\n{rest}" if rest else "")
        raise TimedOut(message) from None
    except NotImplementedError:
        raise AssertionError(f"{name} is not written yet: replace the line `raise NotImplementedError(...)` "
                             f"with your code and run its cell again") from None
    except AssertionError:
        raise
    except Exception as exc:  # noqa: BLE001 - anything the learner's code raises
        raise AssertionError(f"{call} raised {type(exc).__name__}: {exc}{hint(exc)}") from exc


_STUCK = "a loop with no end, or a wait? Check that every loop moves on at each turn and stops."


def _raised_by_the_call(exc) -> bool:
    """Whether ``exc`` came from calling the learner's function itself (its arguments did not fit its
    `def` line), not from inside it: no frame of its traceback is outside this package."""
    tb = exc.__traceback__
    while tb is not None:
        if not os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE + os.sep):
            return False
        tb = tb.tb_next
    return True


def signature_hint(name: str):
    """Advice for a TypeError: a word on the `def` line when the arguments did not fit it (raised by the
    call itself) or the function iterates over a number it was given."""
    def hint(exc) -> str:
        if isinstance(exc, TypeError) and (("argument" in str(exc) and _raised_by_the_call(exc))
                                           or "not iterable" in str(exc)):
            return (f". Does {name} take the arguments the task gives it? Compare your `def` line "
                    f"with the one in the task.")
        return "."
    return hint


def call(fn, name: str, *args, hint=None, stuck="", limit=CALL_LIMIT_S):
    """Call the learner's function ``name`` with ``args``, turning its failures into advice: ``hint(exc)``
    when it has some (text starting with its own punctuation), else a word on the signature; ``stuck``
    says what may make it hang within ``limit`` seconds (see :func:`learner_code`)."""
    if not callable(fn):
        raise AssertionError(f"pass the function itself to the check, e.g. check.{name}({name}); "
                             f"got {fn!r}, which is not a function")

    def advice(exc) -> str:
        return (hint(exc) if hint else "") or signature_hint(name)(exc)
    with learner_code(name, show(name, args), advice, stuck=stuck, limit=limit):
        return fn(*args)


def answer(value, name: str):
    """A value the learner set in a cell (not returned by a function): its placeholder ``...`` means
    "not written yet", and ``None`` means it was never given a value."""
    if value is Ellipsis:
        raise AssertionError(f"{name} is not written yet: in its cell, replace the line "
                             f"`raise NotImplementedError(...)` with code that sets {name}, and run that "
                             f"cell again")
    if value is None:
        raise AssertionError(f"{name} is None: set it to your answer in its cell, and run that cell again")
    return value


def number(value, name: str) -> float:
    """A number the learner set in a cell, as a float; its placeholder or a non-number is a message."""
    value = answer(value, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise AssertionError(f"{name} should be a number, got {value!r} ({type(value).__name__})")
    return real(value, name)


def needs(*names: str, task: int) -> None:
    """The first line of a cell that reads what the cell above it made by running the learner's code
    (``story = check.takeover(Relay)``, then ``check.needs("story", task=2)``): while one of ``names`` is not
    set in the notebook, because that cell stopped with its own message, say to write the tasks up to
    ``task`` first, not Python's ``NameError``. The names are looked up in the caller's globals, which in a
    notebook are the notebook's own."""
    if not names or not all(isinstance(name, str) and name.isidentifier() for name in names):
        raise ValueError(f"names must be the names of the variables the cell reads, e.g. needs('story', task=2); "
                         f"got {names!r}")
    if isinstance(task, bool) or not isinstance(task, int) or task < 1:
        raise ValueError(f"task must be the number of the last task the names need (1, 2...), got {task!r}")
    namespace = sys._getframe(1).f_globals
    missing = [name for name in names if name not in namespace]
    if missing:
        tasks = "task 1" if task == 1 else "tasks 1 and 2" if task == 2 else f"tasks 1 to {task}"
        raise short(AssertionError(f"Write task {task} first: `{missing[0]}` comes from the cell above, which "
                                   f"stopped before making it. When the checks of {tasks} print ✔, run the cell "
                                   f"above, then this one."))


def real(value, call_text: str) -> float:
    """The learner's answer as a float, or a message saying why it is not a number."""
    if value is None:
        raise AssertionError(f"{call_text} returned None: did you forget `return`?")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise AssertionError(f"{call_text} should return a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if math.isnan(value):
        raise AssertionError(f"{call_text} returned nan (not a number): look for 0/0 or inf - inf")
    return value


def is_bool(value) -> bool:
    """True or False, the Python ones or numpy's (what a comparison of numpy numbers gives)."""
    return isinstance(value, bool) or type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")


def close(got: float, want: float, rel: float) -> bool:
    return math.isclose(got, want, rel_tol=rel, abs_tol=rel * 1e-3)


# --- shared by the labs' checks --------------------------------------------------------------------
def short(exc: BaseException) -> BaseException:
    """``exc`` shown by IPython as its one message line (``_render_traceback_``), with no traceback: a
    learner reads what the check found, not the frames of the feedback module under it. Elsewhere
    (pytest, a script) the exception is as it was."""
    exc._render_traceback_ = lambda: [f"{type(exc).__name__}: {exc}"]
    return exc


def earlier_task(number: int, shown: str, cases, *, broken: str | None = None, name: str | None = None) -> None:
    """Run ``cases()``, the plain cases of task ``number`` (quietly), before a check that needs that task:
    an unwritten task is "Write task N first", a failing one "Task N is not done yet: check.``shown`` does
    not pass" (or the ``broken`` text), each followed by the first line of the task's own feedback. With
    ``name`` (code needed by a later step of the same task), "Write ``name`` first" and "``name`` is not
    done yet" instead: "task N" is where the learner already is."""
    what = f"task {number}" if name is None else name
    try:
        cases()
    except AssertionError as err:
        text = str(err).split("\n", 1)[0]
        if "is not written yet" in text:
            raise short(AssertionError(f"Write {what} first: {text}")) from None
        failing = broken or f"{what[0].upper()}{what[1:]} is not done yet: check.{shown} does not pass"
        raise short(AssertionError(f"{failing}. It says: {text}")) from None


def message_only(fn):
    """A public check whose failure shows its message alone: in a notebook the message line and nothing
    else (:func:`short`); elsewhere the traceback stops at the check itself, without the frames of the
    scenarios, the simulator and the learner's code under it."""
    @functools.wraps(fn)
    def check(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AssertionError as exc:
            raise short(type(exc)(str(exc))) from None
    return check


def original_exception(exc):
    """The exception as first raised: simpy hands a failure from process to process as a copy (of the
    same type, the original as its cause), and only the original's traceback reaches the learner's line."""
    while exc.__cause__ is not None and type(exc.__cause__) is type(exc):
        exc = exc.__cause__
    return exc


class Lazy:
    """Text worked out when a message is written: the learner's call in flight when a run was stopped."""

    def __init__(self, fn):
        self.fn = fn

    def __str__(self) -> str:
        return self.fn()

    def __format__(self, spec: str) -> str:
        return format(self.fn(), spec)


# --- the tasks of a lab (labs 01 to 03): what needs an earlier task says which to write first
_Step = namedtuple("_Step", "task shown body reads uses quick")


def _caller_globals() -> dict:
    """The globals of the code that called into this package: in a lab, the notebook's own."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE + os.sep):
        frame = frame.f_back
    return frame.f_globals if frame is not None else {}


def _quietly(body, *args, **kwargs) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        body(*args, **kwargs)


class Tasks:
    """The checks of one lab's tasks, each known by the names its arguments have in the notebook, so that
    code that needs an earlier task first runs that task's check (quietly) and stops with "Write task N
    first: ..." or "Task N is not done yet: ..." (:func:`earlier_task`), never with an error
    from inside the learner's unwritten code.

    ``@tasks.check(number, *reads, uses=names)`` makes the public check of task ``number`` on the learner's
    ``reads``: it first runs the earlier tasks' checks on the same ``reads`` and every check of the names
    in ``uses`` (what the learner's code calls), in task order, skipping any name the caller's namespace
    lacks; ``quick`` are the arguments that make it lighter when it runs for a later one.
    ``tasks.uses(*names)`` is the first line of a cell that runs the learner's ``names``."""

    def __init__(self):
        self._steps: dict[str, list[_Step]] = {}

    def check(self, number: int, *reads: str, uses=(), quick=None):
        def decorate(body):
            step = _Step(number, f"{body.__name__}({', '.join(reads)})", body, reads, tuple(uses), quick or {})
            for name in reads:
                self._steps.setdefault(name, []).append(step)

            @functools.wraps(body)
            def public(*args, **kwargs):
                namespace = ChainMap(dict(zip(reads, args)), _caller_globals())
                self._run(self._needed(reads, before=number) + self._needed(uses), namespace, strict=False,
                          within=number)
                return body(*args, **kwargs)
            return message_only(public)
        return decorate

    def _needed(self, names, before: float = math.inf) -> list[_Step]:
        """The checks that must pass before code that runs ``names``: theirs (of tasks before ``before``)
        and those of the names they use (some more than once)."""
        found: list[_Step] = []
        for name in names:
            for step in self._steps.get(name, ()):
                if step.task < before:
                    found += [*self._needed(step.uses), step]
        return found

    def _run(self, steps, namespace, *, strict: bool, within: int | None = None) -> None:
        """Each of ``steps`` once, in task order, on the learner's objects in ``namespace``; a step of task
        ``within`` (the task the learner is in) is named by what it checks, not by its task."""
        for step in sorted({id(s): s for s in steps}.values(), key=lambda s: s.task):
            missing = [name for name in step.reads if name not in namespace]
            if missing and strict:
                raise short(AssertionError(
                    f"Write task {step.task} first: `{missing[0]}` is not defined yet: run the cell of task "
                    f"{step.task} that defines it, then this one."))
            if not missing:
                args = [namespace[name] for name in step.reads]
                earlier_task(step.task, step.shown, lambda: _quietly(step.body, *args, **step.quick),
                             name=step.reads[0] if step.task == within else None)

    def uses(self, *names: str, task: int | None = None) -> None:
        """The first line of a cell that runs the learner's ``names`` (found in the notebook): while one of
        them, or what it calls, is not written or fails its task's check, say so and which task to write
        first, instead of the error its code would raise. In a cell of task ``task`` itself, what that
        task's code lacks is named ("Write measured_availability first")."""
        unknown = [name for name in names if name not in self._steps]
        if not names or unknown:
            raise ValueError(f"names must be the learner's functions, classes or answers of this lab's tasks "
                             f"({', '.join(self._steps)}); got {unknown or names!r}")
        if task is not None and (isinstance(task, bool) or not isinstance(task, int) or task < 1):
            raise ValueError(f"task must be the number of the task the cell is in (1, 2...), got {task!r}")
        self._run(self._needed(names), _caller_globals(), strict=True, within=task)
