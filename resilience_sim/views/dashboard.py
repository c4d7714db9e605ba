"""Dashboards: named sliders with units and ranges, a fixed-size picture, results cached by parameters,
and an optional side-by-side "without / with" view.

The widget tree carries the DOM classes ``rs-dashboard`` (outer box) and ``rs-dashboard-output``
(the picture), which the browser tests rely on.
"""
from __future__ import annotations

import html
import io
import keyword
from collections import OrderedDict
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from ..core import validate
from .canvas import RedrawCanvas

#: Largest picture a dashboard draws, in pixels a side (figsize * dpi): a screen's width.
MAX_PIXELS = 4000


#: zlib's level for the picture's PNG: 1 encodes in two thirds of the default's (6) time, for a file
#: a few per cent larger; the pixels are the same.
PNG_COMPRESSION = 1
#: zlib's strategy for it: run-length (Z_RLE) encodes a plot's long runs of one colour in two thirds of
#: the default strategy's time, for a file about a tenth larger.
PNG_STRATEGY = 3


#: Widest label a control's widget takes, in pixels (half a screen's width is already generous).
MAX_LABEL_PX = 2000


def _label_px(label_px) -> int:
    """A label width in whole pixels, in [0, :data:`MAX_LABEL_PX`]."""
    return validate.integer("label_px", label_px, low=0, high=MAX_LABEL_PX)


def _identifier(name):
    """A control's ``name``: the keyword the compute function receives, so a Python identifier."""
    validate.text("name", name)
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"name must be a Python identifier (it is passed as compute(name=...)), got {name!r}")
    return name


@dataclass(frozen=True)
class Slider:
    """A parameter the learner moves: ``name`` is the keyword passed to the compute function."""
    name: str
    label: str
    unit: str
    low: float
    high: float
    default: float
    step: float | None = None
    integer: bool = False

    def __post_init__(self):
        _identifier(self.name)
        validate.text("label", self.label)
        validate.text("unit", self.unit)
        validate.boolean("integer", self.integer)
        low = validate.number("low", self.low)
        high = validate.number("high", self.high, low=low, low_open=True)
        validate.number("default", self.default, low=low, high=high)
        if high - low == float("inf"):
            raise ValueError(f"high - low must be a finite range for a slider, got {low:g} to {high:g}")
        if self.step is not None:
            validate.number("step", self.step, low=0.0, high=high - low, low_open=True)
        if self.integer:   # an IntSlider would silently round these
            for field in ("low", "high", "default", "step"):
                value = getattr(self, field)
                if value is not None and not float(value).is_integer():
                    raise ValueError(f"{field} must be a whole number for an integer slider, got {value!r}")

    def check(self, value):
        """``value`` if the slider can take it, else a ValueError naming the slider and its range."""
        if self.integer:
            return validate.integer(self.name, value, low=int(self.low), high=int(self.high))
        return validate.number(self.name, value, low=self.low, high=self.high)

    @property
    def description(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def widget(self, label_px: int = 190):
        """The ipywidgets slider, its label ``label_px`` pixels wide (a whole number in [0, 2000])."""
        label_px = _label_px(label_px)
        common = dict(description=self.description, continuous_update=False,
                      style={"description_width": f"{label_px}px"},
                      layout=widgets.Layout(width=f"{label_px + 290}px"))
        if self.integer:
            return widgets.IntSlider(value=int(self.default), min=int(self.low), max=int(self.high),
                                     step=int(self.step or 1), **common)
        step = self.step or (self.high - self.low) / 100
        return widgets.FloatSlider(value=self.default, min=self.low, max=self.high, step=step,
                                   readout_format=_format(step), **common)


@dataclass(frozen=True)
class Choice:
    """A setting with a few named options (shown as toggle buttons): ``options`` are (text, value)
    pairs and ``name`` is the keyword passed to the compute function with the chosen value."""
    name: str
    label: str
    options: tuple
    default: object

    def __post_init__(self):
        _identifier(self.name)
        validate.text("label", self.label)
        shape = "options must be a list of at least two (text, value) pairs, e.g. (('fast', 1), ('safe', 0))"
        if isinstance(self.options, (str, bytes)):
            raise validate.WrongType(f"{shape}, got {validate.show(self.options)}")
        try:
            options = tuple(tuple(o) for o in self.options)
        except TypeError:
            raise validate.WrongType(f"{shape}, got {validate.show(self.options)}") from None
        if len(options) < 2 or any(len(o) != 2 or not isinstance(o[0], str) for o in options):
            raise ValueError(f"options must hold at least two (text, value) pairs, got {self.options!r}")
        texts, values = [text for text, _ in options], [value for _, value in options]
        for what, items in (("texts", texts), ("values", values)):
            for i, item in enumerate(items):
                if any(_same(item, other) for other in items[:i]):
                    raise ValueError(f"options must have distinct {what} (the buttons could not be told "
                                     f"apart), got {item!r} twice")
        try:
            validate.choice("default", self.default, values)
        except ValueError:
            raise ValueError(f"default must be one of the option values {values}, "
                             f"got {validate.show(self.default)}") from None
        object.__setattr__(self, "options", options)

    def check(self, value):
        """``value`` if it is one of the option values, else a ValueError naming them."""
        return validate.choice(self.name, value, [v for _, v in self.options])

    @property
    def description(self) -> str:
        return self.label

    def widget(self, label_px: int = 190):
        """The ipywidgets toggle buttons, their label ``label_px`` pixels wide (a whole number in [0, 2000])."""
        label_px = _label_px(label_px)
        # one row, label then buttons, as a slider's label then track (without a width and a row the
        # label takes a line of its own above the buttons)
        return widgets.ToggleButtons(options=list(self.options), value=self.default, description=self.label,
                                     style={"description_width": f"{label_px}px", "button_width": "auto"},
                                     layout=widgets.Layout(display="flex", flex_flow="row nowrap",
                                                           align_items="center"))


def _clear(ax) -> None:
    """Empty an axes for the next redraw, keeping its tick machinery: what a draw function adds goes,
    and what it may have changed (scales, limits, colour cycle, labels, grid) is back at the defaults."""
    for artist in [*ax.lines, *ax.patches, *ax.collections, *ax.images, *ax.texts, *ax.artists,
                   *ax.tables, *ax.child_axes]:
        artist.remove()
    if ax.legend_ is not None:
        ax.legend_.remove()
    for loc in ("left", "center", "right"):
        ax.set_title("", loc=loc)
    ax.set_xlabel("")
    ax.set_ylabel("")
    if ax.get_xscale() != "linear":
        ax.set_xscale("linear")
    if ax.get_yscale() != "linear":
        ax.set_yscale("linear")
    ax.grid(False)
    ax.set_prop_cycle(None)
    ax.ignore_existing_data_limits = True
    ax.set_autoscale_on(True)
    ax.margins(x=0.05, y=0.05)


def _png(rgba) -> bytes:
    """PNG bytes of an RGBA picture: stored as RGB when every pixel is opaque (the same pixels, a
    quarter fewer bytes to filter and compress), as RGBA otherwise (a transparent figure)."""
    pixels = np.asarray(rgba)
    if (pixels[..., 3] == 255).all():
        pixels = pixels[..., :3]
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="png", compress_level=PNG_COMPRESSION,
                                                       compress_type=PNG_STRATEGY)
    return buf.getvalue()


def _same(a, b) -> bool:
    try:
        return a is b or bool(a == b)
    except (TypeError, ValueError):   # numpy arrays compared element-wise, say
        return False


def _figsize(figsize) -> tuple[float, float]:
    """A (width, height) pair of positive numbers, in inches."""
    if isinstance(figsize, (str, bytes)) or not hasattr(figsize, "__len__") or len(figsize) != 2:
        raise validate.WrongType(f"figsize must be a (width, height) pair in inches, e.g. (9.0, 3.2), "
                                 f"got {validate.show(figsize)}")
    return (validate.positive("figsize width", figsize[0]), validate.positive("figsize height", figsize[1]))


def _format(step: float) -> str:
    digits = 0
    while step < 1 and digits < 6:
        step *= 10
        digits += 1
    return f".{digits}f"


class Dashboard:
    """Sliders that re-run ``compute(**params)`` and redraw with ``draw(ax, result)``.

    ``sliders`` holds :class:`Slider` and :class:`Choice` controls, shown in that order.

    With ``variants`` (e.g. ``{"without breaker": {"breaker": False}, "with breaker": {"breaker": True}}``)
    each variant's fixed keywords are added to the slider values and the panels are drawn side by side.
    ``summary(result)`` gives a line of text shown above the picture for each panel. Panels share
    their y axis unless ``sharey=False``.
    """

    def __init__(self, compute, draw, sliders, *, variants=None, summary=None, title: str = "",
                 figsize=(9.0, 3.2), dpi: int = 80, cache_size: int = 64, sharey: bool = True):
        validate.function("compute", compute)
        validate.function("draw", draw)
        validate.function("summary", summary, optional=True)
        validate.text("title", title)
        if isinstance(sliders, (Slider, Choice)):
            raise validate.WrongType(f"sliders must be a list of Slider (or Choice), got one {type(sliders).__name__} "
                                     f"({sliders.name!r}): put it in a list, [{type(sliders).__name__}(...)]")
        try:
            self.sliders_spec = list(sliders)
        except TypeError:
            raise validate.WrongType(f"sliders must be a list of Slider (or Choice), "
                                     f"got {validate.show(sliders)}") from None
        if not self.sliders_spec:
            raise ValueError("sliders must be a non-empty list of Slider (or Choice), got an empty list")
        for i, spec in enumerate(self.sliders_spec):
            if not isinstance(spec, (Slider, Choice)):
                raise validate.WrongType(f"sliders[{i}] must be a Slider or Choice, got {validate.show(spec)}")
        names = [s.name for s in self.sliders_spec]
        if len(set(names)) != len(names):
            raise ValueError(f"sliders must have distinct names, got {names}")
        if variants is not None and not isinstance(variants, dict):
            raise validate.WrongType(f"variants must be a dict {{panel title: {{keyword: value}}}}, e.g. "
                                     f"{{'without': {{'breaker': False}}, 'with': {{'breaker': True}}}}, "
                                     f"got {validate.show(variants)}")
        self.variants = dict(variants) if variants else {"": {}}
        for variant, fixed in self.variants.items():
            if not isinstance(variant, str):
                raise validate.WrongType(f"variants keys (the panel titles) must be strings, "
                                         f"got {validate.show(variant)}")
            if not isinstance(fixed, dict):
                raise ValueError(f"variants[{variant!r}] must be a dict of keywords, got {fixed!r}")
            clash = sorted(set(fixed) & set(names))
            if clash:
                raise ValueError(f"variants[{variant!r}] must not set a slider's keyword, got {clash} "
                                 f"(the slider sets it)")
        self.compute, self.draw, self.summary = compute, draw, summary
        self.figsize, self.dpi = _figsize(figsize), validate.integer("dpi", dpi, low=20, high=300)
        width, height = self.figsize[0] * self.dpi, self.figsize[1] * self.dpi
        if max(width, height) > MAX_PIXELS:
            raise ValueError(f"figsize * dpi must be at most {MAX_PIXELS} pixels a side, got {width:g} x {height:g} "
                             f"(figsize {self.figsize} at dpi {self.dpi}); use a smaller figsize or dpi")
        self.sharey = validate.boolean("sharey", sharey)
        self.cache_size = validate.integer("cache_size", cache_size, low=1)
        self._cache: OrderedDict = OrderedDict()
        self.results: dict = {}
        self._figure, self._axes = None, []
        # wide enough for the longest label (about 7 px a character), so none is cut short
        label_px = min(360, max(120, 7 * max(len(s.description) for s in self.sliders_spec) + 12))
        self.sliders = {s.name: s.widget(label_px) for s in self.sliders_spec}
        width, height = int(figsize[0] * dpi), int(figsize[1] * dpi)
        self.picture = widgets.Image(format="png", layout=widgets.Layout(width=f"{width}px", height=f"{height}px"))
        self.picture.add_class("rs-dashboard-output")
        self.text = widgets.HTML(layout=widgets.Layout(min_height="1.6em"))
        header = [widgets.HTML(f"<b>{title}</b>")] if title else []
        self.widget = widgets.VBox(header + list(self.sliders.values()) + [self.text, self.picture])
        self.widget.add_class("rs-dashboard")
        for slider in self.sliders.values():
            slider.observe(self._on_change, names="value")
        self.refresh()

    @property
    def params(self) -> dict:
        return {name: w.value for name, w in self.sliders.items()}

    def set(self, **values) -> None:
        """Move sliders by name (as a learner would); the dashboard refreshes after each move."""
        for name, value in values.items():
            if name not in self.sliders:
                raise ValueError(f"slider must be one of {list(self.sliders)}, got {name!r}")
            spec = next(s for s in self.sliders_spec if s.name == name)
            self.sliders[name].value = spec.check(value)   # a widget would clamp it silently

    def _on_change(self, _change) -> None:
        self.refresh()

    def _result(self, variant: str, params: dict):
        key = (variant, tuple(sorted(params.items())))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        result = self.compute(**params, **self.variants[variant])
        self._cache[key] = result
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return result

    def refresh(self) -> None:
        """Compute (or fetch from the cache) every variant at the current values and redraw."""
        params = self.params
        try:
            self.results = {v: self._result(v, params) for v in self.variants}
            self.picture.value = self.render()
        except Exception as err:  # shown to the learner instead of vanishing into the log
            self.text.value = f"<span style='color:#b00'>Could not run with these settings: {html.escape(str(err))}</span>"
            return
        if self.summary:
            self.text.value = " &nbsp;|&nbsp; ".join(
                f"<b>{v}</b>: {self.summary(r)}" if v else self.summary(r) for v, r in self.results.items())
        else:   # clear the message of a failed run, if any
            self.text.value = ""

    def rerun(self) -> None:
        """Forget cached results and refresh: what the benchmark times."""
        self._cache.clear()
        self.refresh()

    def render(self, *, fresh: bool = False) -> bytes:
        """The current picture as PNG bytes, drawn at the dashboard's dpi (``savefig``'s settings play no
        part). The figure, its axes and its renderer are made once and cleared for each redraw (building
        axes and their ticks is a third of a redraw); ``fresh`` builds them anew, and gives the very same
        picture."""
        fig, axes = self._panels(validate.boolean("fresh", fresh))
        for ax, (variant, result) in zip(axes, self.results.items()):
            self.draw(ax, result)
            if variant:
                ax.set_title(variant)
        fig.canvas.draw()
        return _png(fig.canvas.buffer_rgba())

    def _panels(self, fresh: bool):
        if fresh or self._figure is None or len(self._axes) != len(self.results):
            fig = Figure(figsize=self.figsize, dpi=self.dpi)  # fixed margins: a constrained layout costs 2x
            RedrawCanvas(fig)        # one renderer for every redraw, each text rasterised once per place
            axes = list(fig.subplots(1, len(self.results), sharey=self.sharey, squeeze=False)[0])
            fig.subplots_adjust(left=0.08, right=0.98, bottom=0.16, top=0.88, wspace=0.1)
            if fresh:
                return fig, axes
            self._figure, self._axes = fig, axes
            return fig, axes
        for extra in [a for a in self._figure.axes if a not in self._axes]:   # twins, insets, colorbars
            extra.remove()
        for ax in self._axes:
            _clear(ax)
        return self._figure, self._axes

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)
