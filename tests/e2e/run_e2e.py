"""End-to-end browser test: every course notebook runs and its dashboards react.

Usage::

    make test-e2e                       # or: .venv/bin/python tests/e2e/run_e2e.py
    .venv/bin/python tests/e2e/run_e2e.py notebooks/02_availability.ipynb
    .venv/bin/python tests/e2e/run_e2e.py --course /tmp/sample_course

It copies ``notebooks/`` and ``labs/solutions/`` of the course to a temporary
directory, starts JupyterLab there (see ``lab_server.py``) and drives Debian's
Chromium with Playwright.  For each ``notebooks/*.ipynb`` and each lab solution
notebook it opens the notebook, runs Run > Run All Cells, and checks:

1. every code cell ran and no output is an exception.  JupyterLab renders an
   exception as an ``application/vnd.jupyter.stderr`` output, just like text
   written to stderr, so a stderr output fails only if it looks like an
   exception (a traceback, or a line starting with ``SomeError``/``...Exception``);
   warnings and logging on stderr pass.  A cell meant to raise needs the cell
   tag ``raises-exception`` (JupyterLab then goes on with the next cells);
   nbval's ``# NBVAL_RAISES_EXCEPTION`` comment alone stops Run All there;
2. widgets render (no "Error displaying widget", no "Loading widget...", no
   widget left as its plain-text repr) and each dashboard has a slider.  Every
   notebook under ``notebooks/`` must have a dashboard (``--allow-no-dashboard``
   turns that off); lab solutions may have none;
3. moving the first slider of each dashboard (ArrowRight, or ArrowLeft at the
   maximum, on its focused noUiSlider handle; noUiSlider reports a keyboard
   step as a finished "change", which ipywidgets 8 sends to the kernel even
   with ``continuous_update=False``) changes that dashboard's output: its
   images, text or, failing both, its screenshot.  No exception may appear
   afterwards, nor the helper's "Could not run with these settings" message.

DOM contract with the dashboard helper (keep these when editing it):

* the outer dashboard box has ``widget.add_class("rs-dashboard")``;
* the widget(s) showing its picture (an ``Image`` or an ``Output`` holding a
  matplotlib figure) have ``widget.add_class("rs-dashboard-output")``;
* its sliders are ipywidgets sliders (``.widget-slider`` with a ``.noUi-handle``).

A full-page screenshot per notebook goes to ``e2e-screenshots/``.  One line
per notebook is printed (name, PASS/FAIL, seconds, findings); the exit status
is 1 if any notebook failed, 2 if the test could not run at all.  Every wait is
bounded (``--timeout`` per notebook, ``--total-timeout`` overall), and the
server, its kernels and the browser are stopped on any exit, Ctrl-C included.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab_server import LabServer

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
#: Notebooks with no dashboard, on purpose: the capstone's day takes seconds to run and its scoreboard
#: most of a second to draw, far over a dashboard's 100 ms; the learner changes a configuration instead.
#: Notebook 19's answers are sweeps over seeds: the learner edits the model and runs it again.
NO_DASHBOARD = {"notebooks/18_capstone.ipynb", "notebooks/19_model_your_own_system.ipynb"}
EXCEPTION_RE = re.compile(
    r"Traceback \(most recent call last\)|^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b", re.M)
EXCEPTION_LINE_RE = re.compile(r"[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")
# How resilience_sim.dashboard reports a failed compute inside the dashboard.
DASHBOARD_ERROR_RE = re.compile(r"Could not run with these settings[^\n]*")
WIDGET_REPR_RE = re.compile(r"^((V|H|Grid)?Box|Output|\w*Slider)\(")
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
INTERRUPTED = []  # signals received

# State of the open notebook, read in the page.
JS_STATE = """panel => {
  const status = panel.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status;
  const texts = (root, sel) => [...root.querySelectorAll(sel)].map(e => e.innerText);
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell')].map(c => ({
    prompt: (c.querySelector('.jp-InputPrompt')?.textContent || '').trim(),
    stderr: texts(c, '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'),
  }));
  return {
    status, cells,
    dialog: document.querySelector('.jp-Dialog')?.innerText.replace(/\\s+/g, ' ').trim(),
    plain: texts(panel, '.jp-OutputArea-output[data-mime-type="text/plain"]'),
    outputs: texts(panel, '.jp-OutputArea-output'),
  };
}"""
# What a dashboard shows: images (an Image widget is itself the img) and text of its outputs.
JS_SIGNATURE = """box => [...box.querySelectorAll('.rs-dashboard-output')].map(o =>
  [o, ...o.querySelectorAll('img')].filter(e => e.tagName === 'IMG').map(i => i.src).join('|')
  + '\\n' + o.innerText)"""

# Window height that shows the whole notebook, scrolled to its top.
JS_HEIGHT = """outer => {
  outer.scrollTop = 0;
  const cells = outer.querySelectorAll('.jp-Cell');
  const end = cells.length ? cells[cells.length - 1].getBoundingClientRect().bottom : 0;
  return Math.ceil(Math.max(end, outer.getBoundingClientRect().bottom)) + 60;
}"""


class Failure(Exception):
    """A check cannot go on: a wait ran out of time or the kernel died."""


@dataclass
class Result:
    name: str
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    seconds: float = 0.0

    def line(self):
        verdict = "FAIL" if self.problems else "PASS"
        detail = "; ".join(self.problems + self.notes)
        return f"{self.name:<44} {verdict}  {self.seconds:6.1f}s  {detail}"


def find_chromium():
    """Path of Chromium: $CHROMIUM, /usr/bin/chromium, or chromium on PATH."""
    if os.environ.get("CHROMIUM"):
        path = shutil.which(os.environ["CHROMIUM"])
        return path, f"CHROMIUM={os.environ['CHROMIUM']} is not an executable"
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        path = shutil.which(candidate)
        if path:
            return path, ""
    return None, "Chromium is missing"


def course_notebooks(course):
    """Notebooks to test, relative to the course: notebooks/*.ipynb, then lab solutions."""
    found = sorted((course / "notebooks").glob("*.ipynb"))
    found += sorted(p for p in (course / "labs" / "solutions").rglob("*.ipynb")
                    if ".ipynb_checkpoints" not in p.parts)
    return [p.relative_to(course) for p in found]


def copy_course(course, dest):
    """Copy the parts of the course the notebooks need into ``dest``."""
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
    for part in ("notebooks", "labs/solutions"):
        if (course / part).is_dir():
            shutil.copytree(course / part, dest / part, ignore=ignore)


def wait_until(predicate, deadline, what, interval=0.25):
    """Poll ``predicate`` until it returns a true value, or raise Failure."""
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure(f"timed out waiting for {what}")
        time.sleep(interval)


def code_cells(path):
    """{cell number (1-based): cell} for the non-empty code cells of a notebook file."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return {i: c for i, c in enumerate(cells, 1)
            if c["cell_type"] == "code" and "".join(c["source"]).strip()}


def exceptions_in(state, cells):
    """'cell N: SomeError: message' for each output showing an unexpected exception."""
    found = []
    for number, cell in enumerate(state["cells"], 1):
        tags = cells.get(number, {}).get("metadata", {}).get("tags", [])
        for text in cell["stderr"]:
            if "raises-exception" in tags or not EXCEPTION_RE.search(text):
                continue
            lines = [ln for ln in text.splitlines() if EXCEPTION_LINE_RE.match(ln)] or text.splitlines()
            hint = ""
            if "NBVAL_RAISES_EXCEPTION" in "".join(cells.get(number, {}).get("source", "")):
                hint = " (tag the cell 'raises-exception' so Run All goes on)"
            found.append(f"cell {number}: {' '.join(lines[-1].split())[:100]}{hint}")
    return found


class NotebookCheck:
    """Open one notebook in a fresh browser context and run the three checks."""

    def __init__(self, browser, server, rel, deadline, need_dashboard, shots):
        self.browser, self.server, self.rel, self.deadline = browser, server, rel, deadline
        self.need_dashboard, self.shots = need_dashboard, shots
        self.context = self.page = None
        self.result = Result(str(rel))
        self.cells = code_cells(server.root_dir / rel)

    def ms_left(self):
        return max(1000, (self.deadline - time.monotonic()) * 1000)

    def state(self):
        return self.page.locator(PANEL).evaluate(JS_STATE, timeout=self.ms_left())

    def run(self):
        start = time.monotonic()
        try:
            self.context = self.browser.new_context(viewport=VIEWPORT)
            self.context.set_default_timeout(15000)
            self.page = self.context.new_page()
            self.open()
            if self.run_all():
                self.check_dashboards()
        except Failure as exc:
            self.result.problems.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - Playwright errors become a failed line
            if INTERRUPTED:  # Playwright may turn Ctrl-C into a "target closed" error
                raise KeyboardInterrupt from exc
            first_line = (str(exc).splitlines() or [""])[0]
            self.result.problems.append(f"{type(exc).__name__}: {first_line}")
        finally:
            if self.page and not INTERRUPTED:
                self.screenshot()
            if self.context:
                with contextlib.suppress(Exception):
                    self.context.close()
            self.result.seconds = time.monotonic() - start
        return self.result

    def open(self):
        """Load the notebook and wait until its kernel is idle."""
        page = self.page
        page.goto(self.server.url(self.rel), timeout=self.ms_left())
        page.locator(PANEL).wait_for(timeout=self.ms_left())

        def kernel_idle():  # the indicator says idle before the session even starts
            dialog = page.locator(".jp-Dialog .jp-mod-accept")  # e.g. "Select Kernel"
            if dialog.count():
                dialog.first.click()
            sessions = self.server.api("GET", "/api/sessions")
            return (any(s["path"] == self.rel.as_posix() for s in sessions)
                    and self.state()["status"] == "idle")

        wait_until(kernel_idle, self.deadline, "the kernel to start")
        sidebar = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
        if sidebar.count():  # fold the file browser away for roomier screenshots
            sidebar.first.click()

    def run_all(self):
        """Run > Run All Cells, wait for the end; True if every cell ran cleanly."""
        page = self.page
        page.get_by_role("menuitem", name="Run", exact=True).click(timeout=self.ms_left())
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click(timeout=self.ms_left())
        try:
            state = self.wait_settled()
        except Failure as exc:
            self.result.problems.append(f"{exc}; cells not executed: {self.missed(self.state())}")
            return False
        errors = exceptions_in(state, self.cells)
        self.result.problems += [f"exception in {e}" for e in errors]
        return not errors

    def missed(self, state):
        """Numbers of the non-empty code cells without an execution count."""
        prompts = [c["prompt"] for c in state["cells"]]
        return [i for i in self.cells if i > len(prompts) or not re.fullmatch(r"\[\d+\]:", prompts[i - 1])]

    def wait_settled(self):
        """Wait until the kernel is idle, nothing is queued, and every cell ran or one raised;
        twice in a row, as the kernel goes idle for a moment between cells."""
        previous = None

        def settled():
            nonlocal previous
            state = self.state()
            if state["dialog"]:  # e.g. "Kernel Restarting ... appears to have died"
                raise Failure(f"dialog: {state['dialog'][:150]}")
            if state["status"] == "dead":
                raise Failure("kernel dead")
            quiet = (state["status"] == "idle" and not any(c["prompt"] == "[*]:" for c in state["cells"])
                     and (not self.missed(state) or exceptions_in(state, self.cells)))
            done, previous = quiet and previous, quiet
            return done and state

        return wait_until(settled, self.deadline, "the cells to finish", interval=0.4)

    def check_dashboards(self):
        """Check widgets rendered, then move one slider per dashboard."""
        page, problems, notes = self.page, self.result.problems, self.result.notes

        def widgets_loaded():
            return not any("Loading widget" in t for t in self.state()["outputs"])

        try:
            wait_until(widgets_loaded, min(self.deadline, time.monotonic() + 10), "widgets")
        except Failure:
            problems.append("widgets still 'Loading widget...'")
        state = self.state()
        if any("Error displaying widget" in t for t in state["outputs"]):
            problems.append("Error displaying widget")
        if any(WIDGET_REPR_RE.match(t) for t in state["plain"]):
            problems.append("a widget shows as text (ipywidgets lab extension not loaded?)")

        boxes = page.locator(f"{PANEL} .rs-dashboard:not(.rs-dashboard .rs-dashboard)")
        if not boxes.count():
            loose = page.locator(f"{PANEL} .widget-slider").count()
            msg = "no dashboard" + (f" ({loose} sliders outside any .rs-dashboard)" if loose else "")
            (problems if self.need_dashboard else notes).append(msg)
            return
        for i in range(boxes.count()):
            self.move_slider(boxes.nth(i), i + 1)
        if self.result.problems:
            return
        notes.append(f"{boxes.count()} dashboard(s), sliders react")
        errors = exceptions_in(self.wait_settled(), self.cells)
        problems += [f"exception after slider move: {e}" for e in errors]

    def move_slider(self, box, number):
        """Nudge the first slider of ``box`` and wait for its output to change."""
        problems = self.result.problems
        handle = box.locator(".widget-slider .noUi-handle").first
        if not handle.count():
            problems.append(f"dashboard {number}: no slider")
            return
        outputs = box.locator(".rs-dashboard-output")
        if not outputs.count():
            problems.append(f"dashboard {number}: no .rs-dashboard-output")
            return
        box.scroll_into_view_if_needed(timeout=self.ms_left())
        if self.dashboard_error(box, number, "before moving"):
            return
        before = self.snapshot(box, outputs)
        value = handle.get_attribute("aria-valuenow")
        handle.focus()
        for key in ("ArrowRight", "ArrowLeft"):  # left if it sits at its maximum
            handle.press(key)
            if handle.get_attribute("aria-valuenow") != value:
                break
        else:
            problems.append(f"dashboard {number}: slider did not move")
            return
        try:
            wait_until(lambda: self.snapshot(box, outputs) != before,
                       min(self.deadline, time.monotonic() + 15), "a redraw", interval=0.3)
        except Failure:
            problems.append(f"dashboard {number}: output unchanged after slider moved")
        self.dashboard_error(box, number, "after moving")

    def dashboard_error(self, box, number, when):
        """Report an error message the dashboard shows in place of its picture."""
        found = DASHBOARD_ERROR_RE.search(box.inner_text())
        if found:
            self.result.problems.append(f"dashboard {number} {when}: {found.group(0)[:120]}")
        return found

    def snapshot(self, box, outputs):
        """Images and text of the dashboard's outputs; pixels if both are empty."""
        signature = box.evaluate(JS_SIGNATURE)
        if any(s.strip() for s in signature):
            return signature
        return [outputs.nth(i).screenshot(timeout=self.ms_left()) for i in range(outputs.count())]

    def screenshot(self):
        """Full-page screenshot, with the viewport stretched to the whole notebook."""
        try:
            height = self.page.locator(f"{PANEL} .jp-WindowedPanel-outer").evaluate(JS_HEIGHT, timeout=5000)
            self.page.set_viewport_size({"width": VIEWPORT["width"], "height": min(height, 16000)})
            self.page.wait_for_timeout(300)
        except Exception:  # noqa: BLE001 - a smaller screenshot is still useful
            pass
        name = str(self.rel).replace("/", "__").removesuffix(".ipynb") + ".png"
        try:
            self.page.screenshot(path=self.shots / name, full_page=True, timeout=15000)
        except Exception as exc:  # noqa: BLE001
            self.result.notes.append(f"no screenshot ({type(exc).__name__})")


def on_signal(signum, frame):
    """Ctrl-C or SIGTERM: remember it (Playwright may swallow the exception) and raise."""
    INTERRUPTED.append(signum)
    raise KeyboardInterrupt


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="only these notebooks (paths inside the course)")
    parser.add_argument("--course", type=Path, default=REPO, help="course root (default: the repo)")
    parser.add_argument("--screenshots", type=Path, default=REPO / "e2e-screenshots")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per notebook")
    parser.add_argument("--total-timeout", type=float, default=1500, help="seconds for the whole run")
    parser.add_argument("--allow-no-dashboard", action="store_true",
                        help="a notebook under notebooks/ without a dashboard passes")
    parser.add_argument("--keep-going", dest="keep_going", action="store_true", default=True,
                        help="try every notebook even after a failure (the default)")
    parser.add_argument("--fail-fast", dest="keep_going", action="store_false",
                        help="stop at the first failing notebook")
    return parser.parse_args(argv)


def select(args):
    """Notebook paths relative to the course, or exit with a message."""
    course = args.course.resolve()
    if not args.notebooks:
        return course_notebooks(course)
    chosen = []
    for path in args.notebooks:
        full = path.resolve() if path.exists() else course / path
        if not full.is_file() or not full.is_relative_to(course):
            sys.exit(f"not a notebook of the course {course}: {path}")
        chosen.append(full.relative_to(course))
    return chosen


def run(args, chromium, notebooks, deadline):
    """Start server and browser, check each notebook, stop everything; True if all passed."""
    from playwright.sync_api import sync_playwright

    args.screenshots.mkdir(parents=True, exist_ok=True)
    ok = True
    with tempfile.TemporaryDirectory(prefix="rs-e2e-") as tmp:
        course = Path(tmp) / "course"
        copy_course(args.course.resolve(), course)
        server = LabServer(course, Path(tmp))
        try:
            server.start(timeout=min(60, deadline - time.monotonic()))
            print(f"JupyterLab at {server.base_url}, Chromium {chromium}", flush=True)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                try:
                    for rel in notebooks:
                        if INTERRUPTED:
                            raise KeyboardInterrupt
                        if time.monotonic() > deadline or not (ok or args.keep_going):
                            print(f"{str(rel):<44} SKIP  (total timeout or --fail-fast)")
                            ok = False
                            continue
                        need = (rel.parts[0] == "notebooks" and rel.as_posix() not in NO_DASHBOARD
                                and not args.allow_no_dashboard)
                        check = NotebookCheck(browser, server, rel,
                                              min(deadline, time.monotonic() + args.timeout),
                                              need, args.screenshots)
                        result = check.run()
                        server.shutdown_kernels()
                        print(result.line(), flush=True)
                        ok = ok and not result.problems
                finally:
                    with contextlib.suppress(Exception):  # already gone after a Ctrl-C
                        browser.close()
        finally:
            server.stop()
    return ok


def main(argv=None):
    args = parse_args(argv)
    chromium, why = find_chromium()
    if not chromium:
        print(f"{why}: the end-to-end test drives a real Chromium.\n"
              "  Debian/Ubuntu: sudo apt-get install -y chromium\n"
              "  or point to another Chrome/Chromium: CHROMIUM=/path/to/chrome make test-e2e",
              file=sys.stderr)
        return 2
    try:
        import playwright  # noqa: F401
    except ImportError:
        print("Playwright is missing: pip install -e '.[test]' (make test-e2e does it)", file=sys.stderr)
        return 2
    notebooks = select(args)
    if not notebooks:
        print(f"no notebooks found under {args.course}", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    started = time.monotonic()
    try:
        ok = run(args, chromium, notebooks, started + args.total_timeout)
    except KeyboardInterrupt:
        print("interrupted; server and browser stopped", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{'PASS' if ok else 'FAIL'}: {len(notebooks)} notebook(s) in {time.monotonic() - started:.0f}s, "
          f"screenshots in {args.screenshots}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
