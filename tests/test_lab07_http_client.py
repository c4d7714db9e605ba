"""Lab 07's checks accept the reference solution and reject each typical mistake with a message that
names it. The reference pieces come from the solution notebook itself (its code cells run here in
order), so the notebook stays the single source of truth. Each mistake is written the way a learner
would write it, switched on by a keyword; the live checks run against services on 127.0.0.1 and leave
nothing behind."""
from __future__ import annotations

import email.utils
import json
import math
import os
import random
import re
import time
import uuid

import httpx
import pytest
from lab_support import SOLUTIONS, fails, run_child, solution_namespace
from live_support import no_leaks

from resilience_sim.labs import http_client as check
from resilience_sim.policies import Constant, Countdown, DecorrelatedJitter, FullJitter, RetryPolicy


@pytest.fixture(scope="module")
def ref() -> dict:
    """The namespace left by running every code cell of the solution notebook."""
    return solution_namespace("07_resilient_http_client.ipynb")


# --- the reference solution passes every check ---------------------------------------------------
def test_the_solution_passes_every_check_and_leaves_nothing_behind(ref, capsys):
    """The notebook's run (the fixture) went through every check, check.slo included; the quick ones again
    here, watched for leaks."""
    with no_leaks():
        check.reasons(ref["reason_for"], ref["reason_for_error"])
        check.retry_after(ref["retry_after"])
        check.fetch(ref["fetch"])
        check.call(ref["call"])
    out = capsys.readouterr().out
    assert out.count("✔ ") == 4 and out.count("\n") == 4, out
    yours = ref["yours"]                   # check.slo ran in the notebook (it raises when the SLO is missed)
    assert yours["success"] >= 0.99 and yours["p99"] <= 0.3 and yours["load"] <= 1.15 and not yours["stopped"]


def test_the_solutions_page_numbers(ref):
    plain, yours, course = ref["plain"], ref["yours"], ref["course"]
    assert 0.05 < 1 - plain["success"] < 0.1 and plain["p99"] > 0.6 and plain["load"] == 1.0
    assert yours["requests"] == 200 and yours["success"] >= 0.99 and yours["p99"] <= 0.3
    assert 1.0 < yours["load"] <= 1.15 and course["success"] >= 0.99 and yours["outage_load"] == 3
    assert yours["connections"] <= 20, "one kept-alive connection, and a new one only after a reset or a cut"
    assert ref["took"] >= 0.6 and round(check.least_load(), 3) == 1.096 and abs(yours["load"] - 1.096) < 0.03
    assert (min(ref["sizes"]), max(ref["sizes"])) == check.ITEM_BYTES and check._trickle_s() == (0.6, 0.7)


def test_the_plain_clients_failures_are_its_503s_and_resets(ref):
    plain = ref["plain"]
    failed = plain["requests"] - plain["succeeded"]
    assert failed == sum(plain["failures"].values())
    assert set(plain["failures"]) <= {"status 503", "ReadError('[Errno 104] Connection reset by peer')",
                                      "RemoteProtocolError('peer closed connection without sending complete message body')"}
    assert failed <= plain["faults"]["fail"] + plain["faults"]["reset"]


# --- task 1: reasons ------------------------------------------------------------------------------
def reason_for_fn(**mistakes):
    m = mistakes.get

    def reason_for(status):
        if status < (300 if m("redirect_fails") else 400):
            return None
        named = {400: "bad request", 401: "unauthorized", 403: "unauthorized", 404: "not found", 409: "conflict",
                 429: "too many requests", 503: "error" if m("503_error") else "unavailable"}
        if m("408_425_retried"):
            named.update({408: "timeout", 425: "too many requests"})
        if m("410_not_found"):
            named[410] = "not found"
        if m("429_other_4xx"):
            del named[429]
        if m("all_4xx_retried") and status < 500:
            return "error"
        if m("inverted"):
            return "error" if status < 500 else "bad request"
        if m("own_words") and status >= 500:
            return "server error"
        return named.get(status) or ("error" if status >= 500 else "bad request")
    return reason_for


def reason_for_error_fn(**mistakes):
    m = mistakes.get

    def reason_for_error(err):
        timeouts = httpx.TimeoutException if m("builtin_timeout_missed") else (TimeoutError, httpx.TimeoutException)
        if isinstance(err, timeouts):
            return "timeout"
        if isinstance(err, httpx.ConnectError) and not m("connect_is_error"):
            return "down"
        return "error"
    return reason_for_error


@pytest.mark.parametrize("mistake, match", [
    ("inverted", r"your test of 4xx against 5xx looks inverted"),
    ("all_4xx_retried", r"reason_for\(400\) gave 'error', and RetryPolicy retries it by default: a 400 comes back"),
    ("429_other_4xx", r"reason_for\(429\) gave 'bad request', expected 'too many requests': 429 asks the client"),
    ("redirect_fails", r"reason_for\(301\) gave 'bad request', expected None: a status below 400 is an answer"),
    ("503_error", r"reason_for\(503\) gave 'error', expected 'unavailable' \(see the table\)"),
    ("own_words", r"reason_for\(500\) gave 'server error', which is not one of the course's reasons"),
    ("408_425_retried", r"reason_for\(408\) gave 'timeout', and RetryPolicy retries it by default; expected 'bad "
                        r"request': the table puts 408 \(408 Request Timeout.*429 is the one 4xx retried"),
    ("410_not_found", r"reason_for\(410\) gave 'not found'; expected 'bad request': the table puts 410 \(410 Gone\) "
                      r"with the other 4xx.*only 404 is 'not found'"),
])
def test_each_reason_for_mistake_is_named(mistake, match):
    fails(check.reasons, reason_for_fn(**{mistake: True}), reason_for_error_fn(), match=match)


def test_the_labs_table_is_the_course_clients_for_every_error_status(ref):
    from resilience_sim.live.attempts import reason_for_status
    assert all(ref["reason_for"](status) == reason_for_status(status) for status in range(400, 600))


@pytest.mark.parametrize("mistake, match", [
    ("builtin_timeout_missed", r"reason_for_error\(TimeoutError\('no time left'\)\) gave 'error', expected 'timeout'"),
    ("connect_is_error", r"reason_for_error\(ConnectError\('connection refused'\)\) gave 'error', expected 'down'"),
])
def test_each_reason_for_error_mistake_is_named(mistake, match):
    fails(check.reasons, reason_for_fn(), reason_for_error_fn(**{mistake: True}), match=match)


# --- task 2: Retry-After ------------------------------------------------------------------------
def retry_after_fn(**mistakes):
    m = mistakes.get

    def retry_after(headers):
        value = headers["Retry-After"] if m("key_error") else headers.get("Retry" if m("wrong_header") else "Retry-After")
        if value is None:
            return None
        if m("text"):
            return value
        if m("int_only_raises"):
            return float(int(value))
        try:
            seconds = float(int(value)) if m("int_only") else float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            if m("no_dates"):
                return None
            if m("absolute_date"):
                return when.timestamp()
            if m("local_time"):
                return max(0.0, time.mktime(email.utils.parsedate(value)) - time.time())
            return when.timestamp() - time.time() if m("negative_past") else max(0.0, when.timestamp() - time.time())
        if m("zero_is_none"):
            return seconds or None
        if m("millis"):
            return seconds * 1000
        if m("nan_accepted"):
            return seconds if seconds >= 0 else None
        if m("negative_accepted"):
            return seconds if math.isfinite(seconds) else None
        return seconds if seconds >= 0 and math.isfinite(seconds) else None
    return retry_after


@pytest.mark.parametrize("mistake, match", [
    ("int_only", r"retry_after\(Retry-After: '0.05'\) gave None, expected 0.05. int\(\) reads whole numbers only"),
    ("int_only_raises", r"raised ValueError: invalid literal for int\(\).*int\(\) reads whole numbers only.*float\(\)"),
    ("key_error", r"retry_after\(headers with no Retry-After\) raised KeyError.*headers.get\('Retry-After'\)"),
    ("text", r"gave '2', expected the number 2: seconds as a float, not the header's text"),
    ("zero_is_none", r"retry_after\(Retry-After: '0'\) gave None, expected 0. Does `if not seconds` turn a 0"),
    ("millis", r"gave 2000, expected 2: milliseconds\?"),
    ("nan_accepted", r"retry_after\(Retry-After: 'inf'\) gave inf, expected None: float\(\) reads 'nan' and 'inf'"),
    ("negative_accepted", r"retry_after\(Retry-After: '-1'\) gave -1.0, expected None: a negative wait is no wait"),
    ("absolute_date", r"a point in time: return the seconds from now"),
    ("negative_past", r"expected 0 seconds. A date in the past asks for no wait: max\(0.0, ...\)"),
    ("wrong_header", r"retry_after\(Retry-After: '2'\) gave None, expected 2. Do you read the header named Retry-After\?"),
    ("local_time", r"gave 180[23]\d(\.\d+)?, expected about 30 seconds: 5 hours off, the time zone \(the check ran it with "
                   r"the clock 5 hours west of UTC.*email.utils.parsedate_to_datetime\(value\) keeps its zone"),
])
def test_each_retry_after_mistake_is_named(mistake, match):
    fails(check.retry_after, retry_after_fn(**{mistake: True}), match=match)


def test_a_date_read_as_local_time_is_caught_on_a_machine_set_to_utc_and_the_zone_is_restored(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        fails(check.retry_after, retry_after_fn(local_time=True), match=r"5 hours off, the time zone")
        assert time.timezone == 0 and os.environ["TZ"] == "UTC"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_dates_are_optional_and_the_pass_says_so(capsys):
    check.retry_after(retry_after_fn(no_dates=True))
    assert "(HTTP-dates not read: fine here, the services send seconds)" in capsys.readouterr().out


# --- task 3: fetch ------------------------------------------------------------------------------
_FIRST_LIMIT: dict = {}


def fetch_fn(**mistakes):
    """The solution's fetch, rewritten so that each keyword switches on one typical mistake."""
    m = mistakes.get

    def fetch(http, method, url, limit_s, **options):
        if m("no_options"):
            options = {}
        if m("plain_request"):
            r = http.request(method, url, timeout=limit_s, **options)
            return r.status_code, r.headers, r.content
        if m("module_request"):
            r = httpx.request(method, url, timeout=limit_s, **options)
            return r.status_code, r.headers, r.content
        if limit_s <= 0 and not m("no_guard"):
            raise TimeoutError("no time left")
        limit = limit_s / 1000 if m("millis") else limit_s
        if m("first_limit_kept"):
            limit = _FIRST_LIMIT.setdefault("limit", limit)
        until = time.monotonic() + limit
        chunks = []
        client = httpx.Client() if m("new_client") else http
        try:
            stream = client.stream(method, url, **options) if m("no_clamp") else \
                client.stream(method, url, timeout=limit, **options)
            with stream as response:
                if m("clock_after_headers"):
                    until = time.monotonic() + limit
                if m("raise_for_status"):
                    response.raise_for_status()
                try:
                    for chunk in response.iter_bytes():
                        chunks.append(chunk)
                        if not m("check_after_loop") and time.monotonic() >= until:
                            raise TimeoutError("too late")
                except httpx.TransportError:
                    if not m("swallow_reset"):
                        raise
            if m("check_after_loop") and time.monotonic() >= until:
                raise TimeoutError("too late")
        finally:
            if client is not http:
                client.close()
        body = b"".join(chunks)
        if m("returns_response"):
            return response
        if m("text_body"):
            return response.status_code, response.headers, body.decode()
        if m("dict_headers"):
            return response.status_code, dict(response.headers), body
        return response.status_code, response.headers, body
    return fetch


@pytest.mark.parametrize("mistake, match", [
    ("plain_request", r"returned after [\d.]+ s, .* past its limit, on a body that came 2 bytes every 0.05 s.*httpx's "
                      r"timeouts are per phase and per read"),
    ("check_after_loop", r"raised TimeoutError\('too late'\) only after [\d.]+ s, on a body that came 2 bytes.*check "
                         r"the time after each chunk"),
    ("no_clamp", r"on a server that never answered: .*That is the check's client's own timeout \(1 s\).*Pass "
                 r"timeout=limit_s to http.stream"),
    ("millis", r"limit_s is in seconds \(\d.?\d* s\), not milliseconds"),
    ("new_client", r"did not go through `http`.*a new client per request.*the server accepted 3 for 3 requests"),
    ("module_request", r"did not go through `http`.*a new client per request"),
    ("raise_for_status", r"raised HTTPStatusError(.|\n)*don't call raise_for_status\(\)"),
    ("returns_response", r"returned the httpx.Response itself"),
    ("text_body", r"returned the body as text; return the bytes"),
    ("dict_headers", r"Return response.headers itself \(an httpx.Headers, where a name matches in any case\)"),
    ("no_options", r"gave status 400, expected 201 \(created\). Are headers= and json= handed on"),
    ("swallow_reset", r"although the connection was reset halfway through the body: let httpx's error"),
    ("no_guard", r"fetch\(http, 'GET', catalog \+ '/items/7', 0\) .*with limit_s <= 0,? raise TimeoutError at once"),
    ("clock_after_headers", r"fetch\(http, 'GET', catalog \+ '/items/7', 0.5\) raised TimeoutError\('too late'\) only "
                            r"after 0.9\d* s, on an answer whose headers came after 0.4 s.*It stopped about 0.5 s after "
                            r"the headers came: your clock started then. limit_s counts from the call"),
    ("first_limit_kept", r"0.3\) raised TimeoutError\('too late'\) only after 1.\d+ s.*It stopped after about 1 s, the "
                         r"limit_s of the first fetch the check made"),
])
def test_each_fetch_mistake_is_named(mistake, match):
    _FIRST_LIMIT.clear()
    with no_leaks():
        fails(check.fetch, fetch_fn(**{mistake: True}), match=match)


def test_the_test_fetch_without_mistakes_passes():
    check.fetch(fetch_fn())


# --- task 4: call ------------------------------------------------------------------------------------
IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
_COUNTER = {"attempt": 0}
_LAST = {"wait": None}


def call_fn(ref, **mistakes):
    """The solution's call, rewritten so that each keyword switches on one typical mistake; it uses the
    solution's fetch, reason_for, reason_for_error and retry_after unless a mistake swaps one."""
    m = mistakes.get
    fetch, reason_for, reason_for_error = ref["fetch"], ref["reason_for"], ref["reason_for_error"]
    retry_after = retry_after_fn(int_only=True) if m("int_retry_after") else ref["retry_after"]

    def call(http, method, url, *, retry, rng, deadline_s, attempt_s=math.inf, idempotency_key=None, json=None):
        if m("millis"):
            deadline_s = deadline_s / 1000
        if m("own_key_for_post") and method == "POST" and idempotency_key is None:
            idempotency_key = uuid.uuid4().hex
        start = time.monotonic()
        until = start + deadline_s
        countdown = Countdown(start, until)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key and not m("key_not_sent") else {}
        if m("header_none"):
            headers = {"Idempotency-Key": idempotency_key}
        attempt, previous = (-1 if m("attempt_from_0") else 0, _LAST["wait"] if m("previous_global") else None)
        if m("global_counter"):
            attempt = _COUNTER["attempt"]
        while True:
            if not m("never_ends"):
                attempt += 1
            if m("global_counter"):
                _COUNTER["attempt"] = attempt
            if m("new_key_each_attempt") and idempotency_key:
                headers = {"Idempotency-Key": uuid.uuid4().hex}
            now = time.monotonic()
            limit = deadline_s if m("whole_deadline_each") else min(attempt_s if not m("ignore_attempt_s") else math.inf,
                                                                    until - now)
            if m("stale_now"):
                limit = countdown.attempt_timeout(now, attempt_s)
            try:
                if m("new_client"):
                    with httpx.Client() as own:
                        answer = fetch(own, method, url, limit, headers=headers, json=json)
                else:
                    answer = fetch(http, method, url, limit, headers=headers, json=json)
            except (httpx.TransportError, TimeoutError) as err:
                answer, error, reason, hint = None, err, reason_for_error(err), None
            else:
                status = answer[0]
                reason = reason_for(status)
                if m("every_failure_is_error") and reason is not None:
                    reason = "error"
                if m("reason_not_retried") and reason is not None:
                    reason = "bad request"
                if reason is None:
                    return answer
                error, hint = None, None if m("ignore_retry_after") else retry_after(answer[1])
            now = start if m("stale_now") else time.monotonic()
            remaining = (None if m("no_remaining") or m("never_ends") else deadline_s if m("remaining_whole_deadline")
                         else countdown.remaining(now) if m("stale_now") else until - now)
            idempotent = (True if m("post_idempotent") else method not in IDEMPOTENT if m("post_rule_inverted") else
                          method == "GET" if m("get_only_idempotent") else method in IDEMPOTENT)
            wait = retry.decide(now, attempt + 1 if m("off_by_one") else attempt, reason,
                                None if m("no_rng") else random.Random() if m("fresh_rng") else rng,
                                previous=None if m("previous_ignored") else previous, idempotent=idempotent,
                                idempotency_key=None if m("key_not_to_decide") else idempotency_key,
                                retry_after=hint, remaining=remaining)
            if wait is None:
                if answer is None and not m("returns_none"):
                    raise error
                return answer
            time.sleep(wait)
            previous = _LAST["wait"] = wait
    if m("no_default"):
        def strict(http, method, url, *, retry, rng, deadline_s, attempt_s, idempotency_key=None, json=None):
            return call(http, method, url, retry=retry, rng=rng, deadline_s=deadline_s, attempt_s=attempt_s,
                        idempotency_key=idempotency_key, json=json)
        return strict
    return call


@pytest.mark.parametrize("mistake, match", [
    ("off_by_one", r"made 2 attempts against a server that answers 500 every time; RetryPolicy\(3, \.\.\.\) allows 3 in "
                   r"all \(the first call counts\). Off by one"),
    ("global_counter", r"called 2 times in a row with one policy .* made 3 attempts, then 1: does call keep something "
                       r"from one call to the next"),
    ("every_failure_is_error", r"retried a 400: the server saw 2 attempts. A 400 is an answer about the request"),
    ("ignore_retry_after", r"the server answered 503 with Retry-After: 0.25, and your retry came [\d.]+ s later. "
                           r"Honour it"),
    ("int_retry_after", r"the server answered 503 with Retry-After: 0.25, and your retry came"),
    ("new_client", r"of the 3 requests did not go through `http`.*a new client per request"),
    ("millis", r"deadline_s=2\) (made 1 attempt|raised \w+).*deadline_s is in seconds \(2 s here\), not "
               r"milliseconds"),
    ("reason_not_retried", r"You told retry.decide the reason was 'bad request', which is not retried"),
    ("post_rule_inverted", r"You passed idempotent=False for a GET"),
    ("whole_deadline_each", r"past its deadline: a 503, a wait of 0.4 s, then a body that trickles for 1.2 s. The "
                            r"deadline covers the whole call, waits and attempts: hand fetch what is left of it"),
    ("ignore_attempt_s", r"took [\d.]+ s with 1 attempt: the first attempt met a body that trickles for 1.2 s. Each "
                         r"attempt gets at most attempt_s"),
    ("no_remaining", r"deadline_s=0.4\) did not return within 1 s: it was still at it: the server asked for 5 s "
                     r"\(Retry-After: 5\) with only 0.4 s of the deadline left. Pass remaining= .*\(It was stopped at "
                     r"`time.sleep\(wait\)`.\)"),
    ("returns_none", r"returned None after 3 resets: when no attempt got an answer, raise the last error"),
    ("post_idempotent", r"retried a POST without an idempotency key: the server created order 'lab-[0-9a-f]+' 2 times "
                        r"\(duplicate_orders = 1\)"),
    ("key_not_sent", r"created order 'lab-[0-9a-f]+' 2 times: the retry did not carry the key"),
    ("new_key_each_attempt", r"created order 'lab-[0-9a-f]+' 2 times: the retry did not carry the key"),
    ("key_not_to_decide", r"did not retry the reset POST although it has an idempotency key"),
    ("no_default", r"raised TypeError: .*missing 1 required keyword-only argument: 'attempt_s'. Does call take the "
                   r"arguments the task gives it"),
    ("fresh_rng", r"DecorrelatedJitter\(base=0.02, cap=0.2\)\), rng=rng, deadline_s=2\): retry.decide was given another "
                  r"generator \(Random\), not the rng that call was given"),
    ("no_rng", r"raised ValueError: rng must be a random.Random \(jitter needs random draws\), got None. Hand retry.decide "
               r"the rng that call was given"),
    ("previous_ignored", r"retry.decide number 2 got previous=None after a wait of 0.0\d+. Pass the wait you slept last, "
                         r"previous=wait: decorrelated jitter"),
    ("previous_global", r"its first retry.decide got previous=0.\d+, a wait from an earlier call \(kept in a global"),
    ("get_only_idempotent", r"call\(http, 'PUT', .*did not retry a 503 \(the server saw 1 attempt\). You passed "
                            r"idempotent=False for a PUT. PUT is idempotent \(RFC 9110, section 9.2.2\)"),
    ("remaining_whole_deadline", r"past its deadline: a 503, a wait of 0.4 s.*The retry.decide 0.\d+ s into the call got "
                                 r"remaining=0.6, with 0.?\d* s left: remaining is what is left of the deadline at that "
                                 r"moment, countdown.remaining\(now\), not the whole deadline_s"),
    ("own_key_for_post", r"retried a POST that its caller gave no idempotency key \(2 attempts\); the server created the "
                         r"order once and replayed it, so your call seems to send a key of its own. The task: without "
                         r"idempotency_key, a POST is sent once and never retried"),
    ("stale_now", r"raised ValueError: the Countdown was given now=\S+ after now=\S+, a time before it. A `now` taken "
                  r"earlier was used again: take now = time.monotonic\(\) afresh"),
    ("header_none", r"raised TypeError: Header value must be str or bytes.*With idempotency_key=None send no "
                    r"Idempotency-Key header at all"),
    ("attempt_from_0", r"raised ValueError: attempt must be a whole number >= 1, got 0.*Off by one: decide\(now, n, "
                       r"...\) takes the number of the attempt that just failed, 1 for the first"),
])
def test_each_call_mistake_is_named(ref, mistake, match):
    _COUNTER["attempt"], _LAST["wait"] = 0, None
    with no_leaks():
        fails(check.call, call_fn(ref, **{mistake: True}), match=match)


def test_the_test_call_without_mistakes_passes(ref):
    check.call(call_fn(ref))


LOOPS = '''
    import math, time
    from resilience_sim.labs import http_client as check

    def call(http, method, url, *, retry, rng, deadline_s, attempt_s=math.inf, idempotency_key=None, json=None):
        attempt = 1
        while True:
            status = http.get(url).status_code
            if status < 400:
                return status, {}, b""
            wait = retry.decide(time.monotonic(), attempt, "error", rng)
            time.sleep(wait)

    try:
        check.call(call)
    except AssertionError as err:
        print(type(err).__name__, err)
'''


def test_a_loop_that_never_ends_is_stopped_and_the_line_named(tmp_path):
    out, took = run_child(tmp_path, LOOPS)
    assert "TimedOut call(http, 'GET', catalog + '/items/3', retry=RetryPolicy(3, Constant(0.02)), rng=rng, " \
           "deadline_s=2) did not return within 2 s: your loop did not end" in out, out
    assert "stopped at `" in out and took < 30


def test_a_loop_stopped_inside_httpx_names_the_learners_own_line_not_the_librarys(tmp_path):
    """The loop spends its time in httpx and contextlib; the line named is the learner's, every time."""
    busy = LOOPS.replace("""            wait = retry.decide(time.monotonic(), attempt, "error", rng)
            time.sleep(wait)
""", """            with http.stream("GET", url) as response:
                response.read()
""")
    out, _ = run_child(tmp_path, busy)
    named = re.search(r"\(It was stopped at `(.*?)`\.\)", out)
    assert named and named.group(1) in {line.strip() for line in busy.splitlines()}, out


# --- the checks that need earlier tasks, and code not written yet -------------------------------------
def _namespace_call(ref, **swap) -> callable:
    """The solution notebook's call, compiled afresh in a namespace holding the solution's pieces with
    ``swap`` in place (as a learner's notebook holds their own)."""
    cells = json.loads((SOLUTIONS / "07_resilient_http_client.ipynb").read_text(encoding="utf-8"))["cells"]
    source = next("".join(c["source"]) for c in cells if c["cell_type"] == "code" and "def call(" in "".join(c["source"]))
    namespace = {name: ref[name] for name in ("math", "time", "httpx", "Countdown", "fetch", "reason_for",
                                              "reason_for_error", "retry_after")}
    namespace.update(swap)
    exec(compile(source, "call cell", "exec"), namespace)
    return namespace["call"]


def test_call_says_which_earlier_task_is_not_done(ref):
    fails(check.call, _namespace_call(ref, retry_after=retry_after_fn(int_only=True)),
          match=r"Task 2 is not done yet: check.retry_after\(retry_after\) does not pass. It says: retry_after\("
                r"Retry-After: '0.05'\) gave None")
    fails(check.call, _namespace_call(ref, reason_for=reason_for_fn(inverted=True)),
          match=r"Task 1 is not done yet: check.reasons\(reason_for, reason_for_error\) does not pass")


def test_unwritten_code_says_so_and_names_the_function(ref):
    def reason_for(status):
        raise NotImplementedError("Your code here")

    def retry_after(headers):
        raise NotImplementedError("Your code here")

    def fetch(http, method, url, limit_s, **options):
        raise NotImplementedError("Your code here")

    def make_client():
        raise NotImplementedError("Your code here")
    fails(check.reasons, reason_for, ref["reason_for_error"], match=r"^reason_for is not written yet")
    fails(check.retry_after, retry_after, match=r"^retry_after is not written yet")
    with no_leaks():
        fails(check.fetch, fetch, match=r"^fetch is not written yet")
        fails(check.call, _namespace_call(ref, fetch=fetch), match=r"^fetch is not written yet \(your call calls it\)")
        fails(check.call, _namespace_call(ref, retry_after=retry_after), match=r"^Write task 2 first: retry_after is "
                                                                                r"not written yet")
        fails(check.slo, make_client, ref["call"], match=r"^make_client is not written yet")


def test_the_learners_unchanged_copy_reaches_every_check_and_hears_not_written_yet():
    """Every code cell of labs/07 run in order, errors collected: each check cell says what to write first."""
    cells = json.loads((SOLUTIONS.parent / "07_resilient_http_client.ipynb").read_text(encoding="utf-8"))["cells"]
    namespace, said = {"__name__": "learner"}, {}
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] != "code":
            continue
        try:
            exec(compile(source, "learner cell", "exec"), namespace)
        except Exception as err:  # noqa: BLE001 - the cell's failure is what we look at
            said[source.strip()] = err
    others = [(source.splitlines()[0], repr(err)) for source, err in said.items() if type(err) is not AssertionError]
    assert not others, f"cells that fail with something else than a check's message: {others}"
    said = {source: str(err) for source, err in said.items()}
    assert said["check.reasons(reason_for, reason_for_error)"].startswith("reason_for is not written yet")
    assert said["check.retry_after(retry_after)"].startswith("retry_after is not written yet")
    assert said["check.fetch(fetch)"].startswith("fetch is not written yet")
    assert said["check.call(call)"].startswith("Write task 1 first: reason_for is not written yet")
    assert said["yours = check.slo(make_client, call)"].startswith("Write task 1 first")
    after_slo = [text for source, text in said.items() if source.startswith('check.needs("yours"')]
    assert len(after_slo) == 3 and all(text.startswith("Write task 5 first: `yours` comes from the cell above")
                                       for text in after_slo), after_slo
    demos = ('check.run_slo("plain")', '1 - plain["success"]', 'http.get(catalog.url + "/items/7", timeout=0.2)',
             "took >= 0.6", "RETRYABLE", "sizes = [len(", "check.ITEM_BYTES")
    assert not [source for source in said if any(demo in source for demo in demos)], \
        "the demonstrations and their asserts run as they are in the learner's copy"


def test_wrong_arguments_to_the_checks(ref):
    fails(check.fetch, "fetch", match=r"pass the function itself to the check, e.g. check.fetch\(fetch\)")
    fails(check.slo, ref["make_client"], None, match=r"pass the function itself to the check, e.g. check.call\(call\)")
    with pytest.raises(ValueError, match=r"make_client must be your function, 'plain' or \('course', make_client\)"):
        check.run_slo("fancy")
    with pytest.raises(ValueError, match=r"make_client must be your function, 'plain' or \('course', make_client\)"):
        check.run_slo(("course",))


# --- task 5: the SLO --------------------------------------------------------------------------------------
_ONCE: dict = {}


def make_client_fn(**mistakes):
    m = mistakes.get

    def make_client():
        attempts = 1 if m("no_retries") else 10 if m("storm") or m("many_attempts") else 3
        backoff = (Constant(0.3) if m("long_backoff") else Constant(0) if m("storm") else
                   FullJitter(base=0.01, cap=0.05))
        settings = {"retry": RetryPolicy(attempts, backoff),
                    "deadline_s": 500 if m("millis") else 1.0 if m("long_backoff") else 0.5}
        if not m("no_attempt_s"):
            settings["attempt_s"] = 0.04 if m("attempt_s_too_short") else 0.055 if m("attempt_s_borderline") else 0.12
        if m("closed"):
            with httpx.Client() as http:
                return http, settings
        if m("factory"):
            return httpx.Client, settings
        if m("rng_in_settings"):
            settings["rng"] = None
        if m("made_once"):
            return _ONCE.setdefault("http", httpx.Client()), settings
        if m("no_keepalive"):
            return httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)), settings
        if m("connection_close"):
            return httpx.Client(headers={"Connection": "close"}), settings
        return httpx.Client(), settings
    return make_client


@pytest.mark.parametrize("mistake, match", [
    ("no_attempt_s", r"3 of \d+ requests failed \(the check stopped after request \d+ of 200\); the SLO allows 2 in 200"
                     r"(.|\n)*met a trickle; ended with TimeoutError(.|\n)*A trickle took the whole deadline \(0.5 s\)"),
    ("attempt_s_too_short", r"attempts for \d+ requests \(the check stopped after request \d+ of 200\), 1.[12]\d+ per "
                            r"request: more than the SLO's 1.15.*retries followed an attempt that met no fault needing "
                            r"one \(only the \+50 ms slowdown, or nothing\): attempt_s=0.04"),
    ("no_retries", r"requests failed(.|\n)*max_attempts=1 never retries"),
    ("long_backoff", r"p99 = 0.\d+ s \(the check stopped after request \d+ of 200\), over the SLO's 0.3 s(.|\n)*Your "
                     r"backoff may wait 0.3 s before a retry"),
    ("millis", r"settings\['deadline_s'\] = 500: seconds, not milliseconds"),
    ("closed", r"make_client\(\) returned a closed httpx.Client"),
    ("factory", r"make_client\(\) should return an httpx.Client first"),
    ("rng_in_settings", r"settings has \['rng'\]; the run passes rng itself"),
    ("no_keepalive", r"The server accepted 2\d connections for 20 requests one after another \(the check stopped after "
                     r"request 20 of 200\): a new connection, and its TCP handshake, for nearly every request.*no "
                     r"max_keepalive_connections=0"),
    ("connection_close", r"The server accepted 2\d connections for 20 requests.*no `Connection: close` header"),
    ("storm", r"settings\['retry'\] = RetryPolicy\(max_attempts=10, backoff=Constant\(0\)\) retries at once.*retry "
              r"storm"),
    ("many_attempts", r"With the catalog down \(every request answered 503, no Retry-After\), your client made \d+ "
                      r"attempts for 1 request, \d+ per request; the SLO allows 3.*RetryPolicy\(10, ...\) allows 10 "
                      r"attempts a request: keep max_attempts at 3 or below"),
    ("attempt_s_borderline", r"attempt_s=0.055 sits just above the \+50 ms slowdown.*would depend on the machine, not "
                             r"on your client. Leave a margin: attempt_s of at least 0.08 s"),
])
def test_each_slo_mistake_is_named(ref, mistake, match):
    with no_leaks():
        fails(check.slo, make_client_fn(**{mistake: True}), ref["call"], match=match)


def test_a_client_made_once_outside_make_client_is_refused_before_any_run_closes_it(ref):
    _ONCE.clear()
    try:
        fails(check.slo, make_client_fn(made_once=True), ref["call"], match=r"make_client\(\) returned the same "
              r"httpx.Client twice: it was made once, outside make_client \(at cell level\?\). Every run closes")
        assert not _ONCE["http"].is_closed, "refused before the run: the learner's client is not closed under them"
    finally:
        _ONCE.pop("http").close()


def test_a_call_that_breaks_the_decide_contract_is_caught_in_the_slo_run_too(ref):
    """A call that passes previous=None at every retry meets the SLO's numbers; the run still names it."""
    def make_client():
        return httpx.Client(), {"retry": RetryPolicy(3, DecorrelatedJitter(0.01, 0.05)), "deadline_s": 0.5,
                                "attempt_s": 0.12}
    with no_leaks():
        fails(check.slo, make_client, call_fn(ref, previous_ignored=True),
              match=r"call\(http, 'GET', catalog \+ '/items/\d+', rng=rng, .*\): retry.decide number 2 got "
                    r"previous=None after a wait of")
        fails(check.slo, make_client_fn(), call_fn(ref, fresh_rng=True),
              match=r"retry.decide was given another generator \(Random\), not the rng that call was given")


def test_a_call_that_bypasses_http_is_caught_at_once(ref):
    started = time.monotonic()
    fails(check.slo, make_client_fn(), call_fn(ref, new_client=True),
          match=r"1 of the 1 attempts did not go through the http that make_client returned \(the check stopped "
                r"after request 1 of 200\): a new client per request")
    assert time.monotonic() - started < 5.0, "stopped at the first request, not after the run"
