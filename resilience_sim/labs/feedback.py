"""What every lab check shares: running the learner's code so that any failure becomes a message that
says what to do, and showing values and calls the way the learner wrote them."""
from __future__ import annotations

import math
import numbers
import random
from contextlib import contextmanager


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


@contextmanager
def learner_code(name: str, call: str, hint=lambda exc: ""):
    """Run the learner's code inside: a ``NotImplementedError`` becomes "``name`` is not written yet",
    any other exception "``call`` raised ...", followed by ``hint(exc)`` (text starting with its own
    punctuation, or "")."""
    try:
        yield
    except NotImplementedError:
        raise AssertionError(f"{name} is not written yet: replace the line `raise NotImplementedError(...)` "
                             f"with your code and run its cell again") from None
    except AssertionError:
        raise
    except Exception as exc:  # noqa: BLE001 - anything the learner's code raises
        raise AssertionError(f"{call} raised {type(exc).__name__}: {exc}{hint(exc)}") from exc


def signature_hint(name: str):
    def hint(exc) -> str:
        if isinstance(exc, TypeError) and ("argument" in str(exc) or "not iterable" in str(exc)):
            return (f". Does {name} take the arguments the task gives it? Compare your `def` line "
                    f"with the one in the task.")
        return "."
    return hint


def call(fn, name: str, *args, hint=None):
    """Call the learner's function ``name`` with ``args``, turning its failures into advice: ``hint(exc)``
    when it has some (text starting with its own punctuation), else a word on the signature."""
    if not callable(fn):
        raise AssertionError(f"pass the function itself to the check, e.g. check.{name}({name}); "
                             f"got {fn!r}, which is not a function")

    def advice(exc) -> str:
        return (hint(exc) if hint else "") or signature_hint(name)(exc)
    with learner_code(name, show(name, args), advice):
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
