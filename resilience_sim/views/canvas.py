"""An Agg canvas for a picture redrawn many times (a dashboard's): one renderer kept across redraws,
each piece of text rasterised once per place, and each font's height metrics read once.

Why: with matplotlib 3.11 a redraw spends about a third of its time turning text into pixels (each
glyph laid out and rendered by FreeType from Python), and a dashboard's titles, axis labels and most
tick labels are the same text at the same place redraw after redraw. Laying out a text also reads its
font's ascent, descent and line gap from the font's tables, two or three times per text and redraw,
unless the renderer offers them (``_get_font_height_metrics``, the hook matplotlib's PDF and PS
backends use): this one reads them once per font properties and dpi, with matplotlib's own formula.

What holds:

* the pixels are exactly those of a plain ``FigureCanvasAgg``: a remembered text replays the very
  calls that drew it (each glyph's coverage bitmap, at the same pixel), with the colour and alpha of
  the current draw; only plain text is remembered (no mathtext, no TeX);
* a text is remembered by everything its bitmaps depend on: the string, the font properties, the
  angle, the exact position, antialiasing, the hinting flag and the text's font features and
  language; anything else (colour, alpha, clipping) is applied at replay. Like matplotlib's own cache
  of text sizes, it keys on the font properties, not on the rcParams that resolve a family to a file;
* memory stays bounded: at most :data:`MAX_TEXTS` texts (and font properties), forgotten all at once
  when full;
* :meth:`RedrawCanvas.draw` places each axes' titles at the top of the axes without matplotlib's
  automatic search (it lays the y axis out once more per axes: a sixth of a dashboard figure's draw)
  wherever that search can only leave them there: x ticks and label at the bottom, no child axes. It
  checks after drawing that no y offset text ("1e6") and no axes top is in a title's way, and draws
  again with the search where one is; the pixels are Agg's either way.

Before matplotlib 3.11, Agg drew a text as one bitmap held by the font itself; such a text is drawn
afresh each time (those versions are fast at it).
"""
from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.font_manager import fontManager, get_font

_fonts_of = getattr(fontManager, "_find_fonts_by_props", None)     # matplotlib's font (and fallbacks) lookup

#: Most texts one renderer remembers.
MAX_TEXTS = 4096
#: Where a font's height metrics are, in the order matplotlib reads them: (table, line gap, ascent, descent).
_HEIGHT_TABLES = (("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"), ("hhea", "lineGap", "ascent", "descent"))


class _Recorder:
    """Stands in for Agg's C renderer while one text is drawn: notes each glyph's bitmap and place,
    and passes everything on."""

    def __init__(self, inner):
        self.inner, self.glyphs, self.replayable = inner, [], True

    def draw_text_image(self, image, x, y, angle, gc):
        if isinstance(image, np.ndarray):
            self.glyphs.append((image.copy(), x, y, angle))
        else:                                    # a font's own bitmap, which it reuses: not replayable
            self.replayable = False
        self.inner.draw_text_image(image, x, y, angle, gc)

    def __getattr__(self, name):
        return getattr(self.inner, name)


class TextMemoRenderer(RendererAgg):
    """A ``RendererAgg`` that rasterises each plain text once per place (see the module's docstring)."""

    def __init__(self, width, height, dpi):
        super().__init__(width, height, dpi)
        self._texts: dict = {}
        self._heights: dict = {}

    def _get_font_height_metrics(self, prop, *more):
        """(ascent, descent, line gap) of ``prop``'s font at this renderer's dpi, in pixels, as
        ``Text._get_layout`` computes them from the font's tables (Nones: let it measure instead)."""
        if more or _fonts_of is None:                 # a hook that changed: leave the work to matplotlib
            return None, None, None
        heights = self._heights.get(prop)
        if heights is None:
            heights = (None, None, None)
            font = get_font(_fonts_of(prop))
            for name, gap, ascent, descent in _HEIGHT_TABLES:
                table = font.get_sfnt_table(name)
                if table is not None:
                    scale = 1 / font.get_sfnt_table("head")["unitsPerEm"] * prop.get_size_in_points() * self.dpi / 72
                    heights = (table[ascent] * scale, -table[descent] * scale, table[gap] * scale)
                    break
            if len(self._heights) >= MAX_TEXTS:
                self._heights.clear()
            self._heights[prop.copy()] = heights
        return heights

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if ismath:
            return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
        features = getattr(mtext, "get_fontfeatures", lambda: None)()
        key = (s, prop, angle, x, y, gc.get_antialiased(), get_hinting_flag(),
               None if features is None else tuple(features), getattr(mtext, "get_language", lambda: None)())
        glyphs = self._texts.get(key)
        if glyphs is None:
            inner = self._renderer
            self._renderer = recorder = _Recorder(inner)
            try:
                super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
            finally:
                self._renderer = inner
            if recorder.replayable:
                if len(self._texts) >= MAX_TEXTS:
                    self._texts.clear()
                self._texts[(s, prop.copy(), *key[2:])] = recorder.glyphs
            return
        for image, gx, gy, gangle in glyphs:
            self._renderer.draw_text_image(image, gx, gy, gangle, gc)


def _title_group(ax) -> set:
    """The axes whose decorations matplotlib weighs when it places ``ax``'s titles (its own search's set)."""
    group = {ax, *ax.child_axes, *ax._twinned_axes.get_siblings(ax)}
    group.update(ax.get_figure(root=False)._align_label_groups["title"].get_siblings(ax))
    return group


def _titles(ax) -> tuple:
    return ax.title, ax._left_title, ax._right_title


def _pin_titles(figure) -> list:
    """Put the titles of every axes whose automatic title search could only find the top of the axes
    at that top, (x, 1.0), as the search would, and switch the search off; returns those axes."""
    pinned = []
    for ax in figure.axes:
        if getattr(ax, "_autotitlepos", None) is not True or ax.child_axes:
            continue
        if not any(t.get_text() for t in _titles(ax)):
            continue                                   # the search itself stops here
        if any(a.xaxis.get_ticks_position() in ("top", "unknown") or a.xaxis.get_label_position() == "top"
               for a in _title_group(ax)):
            continue
        for title in _titles(ax):
            title.set_position((title.get_position()[0], 1.0))
        ax._autotitlepos = False
        pinned.append(ax)
    return pinned


def _titles_clear(ax, renderer) -> bool:
    """After a draw: True if the search would have left ``ax``'s titles at the top of its axes (no y
    offset text shown beside them, each title above the highest axes top of its group)."""
    group = _title_group(ax)
    if any(a.yaxis.offsetText.get_visible() and a.yaxis.offsetText.get_text() for a in group):
        return False
    top = max(a.spines.get("outline", a).get_window_extent().ymax for a in group)
    return top >= 0 and all(t.get_window_extent(renderer).ymin >= top for t in _titles(ax) if t.get_text())


class RedrawCanvas(FigureCanvasAgg):
    """A ``FigureCanvasAgg`` that keeps one :class:`TextMemoRenderer` while the figure's size and dpi
    stay the same (Agg's own canvas keeps its renderer too, but a figure made with ``Figure()`` has no
    Agg canvas, so each ``savefig`` would make a canvas and a renderer anew), and whose :meth:`draw`
    places titles without a search where the search cannot move them (see the module's docstring;
    ``savefig`` calls Agg's own draw, with the search)."""

    def draw(self):
        pinned = _pin_titles(self.figure)
        try:
            super().draw()
            if not all(_titles_clear(ax, self.renderer) for ax in pinned):
                for ax in pinned:                    # something is in a title's way: let matplotlib search
                    ax._autotitlepos = True
                pinned = []
                super().draw()
        finally:
            for ax in pinned:
                ax._autotitlepos = True

    def get_renderer(self):
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        if self._lastKey != key:
            self.renderer, self._lastKey = TextMemoRenderer(w, h, self.figure.dpi), key
        return self.renderer
