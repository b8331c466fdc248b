"""Plotly figures (and the Vega-Lite spec of the optimization history) from the frames
of :mod:`tuner.dashboard.frames`.

Text that comes from users (study, parameter and metric names, categorical values)
goes through :func:`esc`: Plotly renders a subset of HTML in titles, labels and hover
text, so ``<b>`` or ``<a href=...>`` in a name would otherwise be markup.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.colors as px_colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .frames import is_numeric

__all__ = [
    "STATE_COLORS",
    "compare_curves_fig",
    "compare_fronts_fig",
    "compare_studies_fig",
    "contour_fig",
    "curves_fig",
    "esc",
    "history_spec",
    "hypervolume_fig",
    "importance_fig",
    "parallel_fig",
    "parallel_svg_fig",
    "pareto_fig",
    "population_fig",
    "slice_fig",
    "steps_reached_fig",
    "timeline_fig",
]

STATE_COLORS = {
    "completed": "#1f77b4",
    "pruned": "#d62728",
    "failed": "#7f7f7f",
    "running": "#2ca02c",
    "stopped": "#ff7f0e",
}
BEST_COLOR = "#ff7f0e"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
"""Distinct colours for trials or studies drawn side by side."""
_LAYOUT: dict[str, Any] = {
    "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
    "height": 360,
    "legend": {"orientation": "h", "y": -0.2},
}


def esc(value: Any) -> str:
    """``value`` as text Plotly shows literally (its HTML subset escaped)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _name(column: str) -> str:
    return esc(column.split(".", 1)[1] if column.startswith(("params.", "metrics.")) else column)


def history_spec(
    points: pd.DataFrame, best: pd.DataFrame, metric: str, x: str = "number"
) -> dict[str, Any]:
    """Each trial's value (completed trials as dots; pruned ones, if ``points`` has
    them, as red crosses at their last value) and the best so far, over ``x``
    (``number`` or ``elapsed_s``), as a Vega-Lite spec for ``st.vega_lite_chart``.

    The page's default chart is drawn by Vega-Lite, not Plotly: Streamlit loads its
    Plotly component (4.7 MB of JavaScript) only for a Plotly chart, and in a browser
    without a GPU parsing it and drawing one Plotly chart cost more than the rest of the
    page. Vega-Lite draws text as text (no HTML), so names need no escaping.

    Args:
        points: ``number``, ``value``, ``state`` and ``x`` of the trials to mark.
        best: ``best`` and ``x`` where the best so far changed, and at the last trial.
        metric: the y axis's title.
        x: the column to draw along the x axis.
    """
    title = "trial number" if x == "number" else "seconds since the first trial started"
    states = (
        points["state"].astype(str) if "state" in points else pd.Series("completed", points.index)
    )
    domain = ["completed", "pruned", "best so far"]
    colors = [STATE_COLORS["completed"], STATE_COLORS["pruned"], BEST_COLOR]
    if not (states == "pruned").any():
        domain, colors = [domain[0], domain[2]], [colors[0], colors[2]]
    legend = {"domain": domain, "range": colors}
    x_enc: dict[str, Any] = {"field": "x", "type": "quantitative", "title": title}
    if x == "number":  # trial numbers are whole: no tick at 2.5
        x_enc["axis"] = {"tickMinStep": 1, "format": "d"}
    y_title = str(metric)
    tooltip = [
        {"field": "number", "type": "quantitative", "title": "trial"},
        {"field": "state", "type": "nominal", "title": "state"},
        {"field": "value", "type": "quantitative", "title": y_title},
    ]

    def marks(state: str, mark: dict[str, Any]) -> dict[str, Any]:
        return {
            "data": {"name": state},
            "mark": {"type": "point", "size": 25, "opacity": 0.6, **mark},
            "encoding": {
                "x": x_enc,
                "y": {"field": "value", "type": "quantitative", "title": y_title,
                      "scale": {"zero": False}},
                "color": {"datum": state, "scale": legend,
                          "legend": {"title": None, "orient": "bottom"}},
                "tooltip": tooltip,
            },
        }  # fmt: skip

    def rows(state: str) -> pd.DataFrame:
        part = points[states == state]
        return pd.DataFrame(
            {"x": part[x], "number": part["number"], "value": part["value"], "state": state}
        )

    layers = [marks("completed", {"filled": True})]
    datasets = {"completed": rows("completed")}
    if "pruned" in domain:
        # drawn after the completed dots, as crosses: told apart without colour too
        layers.append(marks("pruned", {"shape": "cross", "filled": True, "opacity": 0.7}))
        datasets["pruned"] = rows("pruned")
    datasets["best"] = pd.DataFrame({"x": best[x], "best": best["best"]})
    layers.append(
        {
            "data": {"name": "best"},
            "mark": {"type": "line", "interpolate": "step-after", "strokeWidth": 2},
            "encoding": {
                "x": x_enc,
                "y": {"field": "best", "type": "quantitative"},
                "color": {"datum": "best so far", "scale": legend},
            },
        }
    )
    return {
        "title": f"Optimization history over {'trials' if x == 'number' else 'time'}",
        "height": _LAYOUT["height"],  # the whole chart, as the Plotly charts
        "datasets": datasets,
        "layer": layers,
    }


def _axis_values(series: pd.Series, log: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
    """Values for a parcoords axis: numbers as is (log10 for a log-scale parameter),
    categories as codes; an absent (inactive conditional) value gets its own tick
    below the range, labelled absent."""
    present = series.dropna()
    extra: dict[str, Any] = {}
    tickvals: list[float] = []
    ticktext: list[str] = []
    if is_numeric(series) and log and len(present) and float(present.min()) > 0:
        values = np.log10(series.astype(float).to_numpy())
        decades = np.arange(np.floor(np.nanmin(values)), np.ceil(np.nanmax(values)) + 1)
        tickvals = decades.tolist()
        ticktext = [f"1e{int(d)}" for d in decades]
    elif is_numeric(series):
        values = series.astype(float).to_numpy()
    else:
        cats = sorted({str(v) for v in present})
        codes = {c: i for i, c in enumerate(cats)}
        values = np.array([np.nan if v is None else codes[str(v)] for v in series], dtype=float)
        tickvals = list(range(len(cats)))
        ticktext = [esc(c) for c in cats]
    if series.isna().any():
        low = np.nanmin(values) if len(present) else 0.0
        high = np.nanmax(values) if len(present) else 1.0
        absent = low - ((high - low) * 0.15 or 1.0)
        values = np.where(np.isnan(values), absent, values)
        if tickvals:
            tickvals, ticktext = [absent, *tickvals], ["(absent)", *ticktext]
        else:
            grid = np.linspace(low, high, 5)
            tickvals = [absent, *grid.tolist()]
            ticktext = ["(absent)", *(f"{v:.3g}" for v in grid)]
    if tickvals:
        extra = {"tickvals": tickvals, "ticktext": ticktext}
    return values, extra


def parallel_fig(
    frame: pd.DataFrame, params: Sequence[str], metric: str, log: Collection[str] = ()
) -> go.Figure:
    """Parallel coordinates: one line a trial through its parameters to the metric."""
    dims = []
    for col in params:
        values, extra = _axis_values(frame[col], col in log)
        dims.append({"label": _name(col), "values": values, **extra})
    dims.append({"label": esc(metric), "values": frame["value"].astype(float).to_numpy()})
    fig = go.Figure(
        go.Parcoords(
            dimensions=dims,
            line={
                "color": frame["value"].astype(float),
                "colorscale": "Viridis",
                "showscale": True,
            },
        )
    )
    fig.update_layout(title=f"Parallel coordinates ({len(frame):,} trials)", **_LAYOUT)
    fig.update_layout(margin={"l": 60, "r": 60, "t": 70, "b": 30})
    return fig


def parallel_svg_fig(
    frame: pd.DataFrame, params: Sequence[str], metric: str, log: Collection[str] = (),
    colors: int = 8,
) -> go.Figure:  # fmt: skip
    """Parallel coordinates drawn as SVG lines (no WebGL): each axis scaled to its own
    range, one line a trial coloured by the metric, hover gives the trial number.

    Plotly's ``Parcoords`` (:func:`parallel_fig`) can brush axes but needs WebGL, which
    a browser without a GPU renders in software: 1.4 s of the study page in headless
    Chromium. This one costs a few SVG paths.
    """
    columns = [*params, "value"]
    labels = [_name(col) for col in params] + [esc(metric)]
    k = len(columns)
    fig = go.Figure()
    scaled = []
    for i, col in enumerate(columns):
        if col == "value":
            values = frame["value"].astype(float).to_numpy()
            extra: dict[str, Any] = {}
        else:
            values, extra = _axis_values(frame[col], col in log)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
        span = (high - low) or 1.0
        scaled.append((values - low) / span)
        ticks = extra.get("tickvals") or list(np.linspace(low, high, 5) if high > low else [low])
        texts = extra.get("ticktext") or [f"{v:.3g}" for v in ticks]
        for value, label in zip(ticks, texts, strict=True):
            if not low - 1e-9 * span <= value <= high + 1e-9 * span:
                continue  # e.g. a decade of a log axis beyond the trials' range
            fig.add_annotation(
                x=i, y=(value - low) / span, text=label, showarrow=False, xanchor="right",
                xshift=-3, font={"size": 10, "color": "#555"},
            )  # fmt: skip
        fig.add_annotation(x=i, y=1.1, text=f"<b>{labels[i]}</b>", showarrow=False)
        fig.add_shape(type="line", x0=i, x1=i, y0=0, y1=1, line={"color": "#999", "width": 1})
    ys = np.vstack(scaled).T if len(frame) else np.empty((0, k))
    value = frame["value"].astype(float).to_numpy()
    vmin, vmax = (float(np.nanmin(value)), float(np.nanmax(value))) if len(value) else (0, 1)
    position = (value - vmin) / ((vmax - vmin) or 1.0)
    bucket = np.minimum((position * colors).astype(int), colors - 1)
    numbers = frame["number"].to_numpy()
    for b in range(colors):
        rows = np.flatnonzero(bucket == b)
        if not len(rows):
            continue
        xs: list[Any] = []
        yy: list[Any] = []
        nums: list[Any] = []
        for r in rows:
            xs += [*range(k), None]
            yy += [*ys[r].tolist(), None]
            nums += [int(numbers[r])] * k + [None]
        color = px_colors.sample_colorscale("Viridis", (b + 0.5) / colors)[0]
        fig.add_trace(
            go.Scatter(
                x=xs, y=yy, mode="lines", line={"color": color, "width": 1}, opacity=0.7,
                customdata=nums, hovertemplate="trial %{customdata}<extra></extra>",
                showlegend=False,
            )
        )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
            marker={"colorscale": "Viridis", "cmin": vmin, "cmax": vmax, "color": [vmin],
                    "showscale": True, "colorbar": {"title": {"text": esc(metric)}}},
        )
    )  # fmt: skip
    fig.update_xaxes(visible=False, range=[-0.6, k - 0.6])
    fig.update_yaxes(visible=False, range=[-0.08, 1.15])
    fig.update_layout(title=f"Parallel coordinates ({len(frame):,} trials)", **_LAYOUT)
    fig.update_layout(margin={"l": 60, "r": 20, "t": 40, "b": 20})
    return fig


def importance_fig(imp: pd.DataFrame) -> go.Figure:
    ordered = imp.sort_values("importance")
    fig = go.Figure(
        go.Bar(
            x=ordered["importance"], y=[esc(p) for p in ordered["param"]], orientation="h",
            marker={"color": STATE_COLORS["completed"]},
        )
    )  # fmt: skip
    fig.update_layout(title="Parameter importance", xaxis_title="importance", **_LAYOUT)
    return fig


def slice_fig(
    frame: pd.DataFrame, params: Sequence[str], metric: str, log: Collection[str] = (),
    per_row: int = 5,
) -> go.Figure:  # fmt: skip
    """One scatter per parameter: the metric against the parameter's value (trials
    where the parameter is absent are not drawn in its panel)."""
    params = list(params) or ["number"]
    rows = (len(params) + per_row - 1) // per_row
    cols = min(per_row, len(params))
    fig = make_subplots(
        rows=rows, cols=cols, shared_yaxes=True, subplot_titles=[_name(p) for p in params],
        horizontal_spacing=0.04, vertical_spacing=0.15,
    )  # fmt: skip
    for i, col in enumerate(params):
        sub = frame[[col, "value", "number"]].dropna()
        x = sub[col] if is_numeric(sub[col]) else sub[col].map(lambda v: esc(v))
        fig.add_trace(
            go.Scatter(
                x=x, y=sub["value"], mode="markers", showlegend=False,
                marker={"size": 5, "color": sub["number"], "opacity": 0.8,
                        "colorscale": [[0, "#9ecae1"], [1, "#08306b"]]},
                customdata=sub["number"], hovertemplate="trial %{customdata}: %{y}<extra></extra>",
            ),
            row=i // per_row + 1, col=i % per_row + 1,
        )  # fmt: skip
        if col in log:
            fig.update_xaxes(type="log", row=i // per_row + 1, col=i % per_row + 1)
    fig.update_yaxes(title_text=esc(metric), col=1)
    fig.update_layout(title="Slice plots (darker: later trials)", **_LAYOUT)
    fig.update_layout(height=300 * rows + 60)
    return fig


def contour_fig(
    xs: np.ndarray, ys: np.ndarray, z: np.ndarray, points: pd.DataFrame, x: str, y: str,
    metric: str, log: Collection[str] = (),
) -> go.Figure:  # fmt: skip
    """The metric over two parameters (interpolated), with the trials on top."""
    fig = go.Figure()
    if z.size:
        fig.add_trace(
            go.Contour(
                x=xs, y=ys, z=z, colorscale="Viridis", connectgaps=False,
                colorbar={"title": {"text": esc(metric)}}, contours={"coloring": "heatmap"},
            )
        )  # fmt: skip
    from .frames import _as_codes

    if len(points):
        fig.add_trace(
            go.Scatter(
                x=_as_codes(points[x]), y=_as_codes(points[y]), mode="markers", showlegend=False,
                marker={"size": 4, "color": "white", "line": {"width": 0.5, "color": "black"}},
                hoverinfo="skip",
            )
        )  # fmt: skip
    for axis, col in (("xaxis", x), ("yaxis", y)):
        if len(points) and not is_numeric(points[col]):
            cats = sorted({str(v) for v in points[col]})
            fig.update_layout(
                {axis: {"tickvals": list(range(len(cats))), "ticktext": [esc(c) for c in cats]}}
            )
    if x in log:
        fig.update_xaxes(type="log")
    if y in log:
        fig.update_yaxes(type="log")
    fig.update_layout(
        title=f"Contour of {esc(metric)}", xaxis_title=_name(x), yaxis_title=_name(y), **_LAYOUT
    )
    return fig


def _joined(curves: pd.DataFrame) -> tuple[list[Any], list[Any], list[Any]]:
    """Several curves as one trace: x, y and trial numbers with None between curves."""
    xs: list[Any] = []
    ys: list[Any] = []
    nums: list[Any] = []
    for number, curve in curves.groupby("number", sort=True):
        xs += [*curve["step"].tolist(), None]
        ys += [*curve["value"].tolist(), None]
        nums += [number] * len(curve) + [None]
    return xs, ys, nums


def curves_fig(
    curves: pd.DataFrame, states: dict[int, str], best: Sequence[int], metric: str
) -> go.Figure:
    """Learning curves by state; pruned trials end in a cross where they were cut."""
    fig = go.Figure()
    if curves.empty:
        fig.update_layout(title="Learning curves (no intermediate results yet)", **_LAYOUT)
        return fig
    curves = curves.assign(state=curves["number"].map(states).fillna("running"))
    best_set = set(best)
    for state in ("completed", "running", "stopped", "failed", "pruned"):
        part = curves[(curves["state"] == state) & ~curves["number"].isin(best_set)]
        if part.empty:
            continue
        xs, ys, nums = _joined(part)
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, mode="lines", name=state, customdata=nums,
                line={"color": STATE_COLORS[state], "width": 1}, opacity=0.5,
                hovertemplate="trial %{customdata} step %{x}: %{y}<extra>" + state + "</extra>",
            )
        )  # fmt: skip
        if state == "pruned":
            ends = part.groupby("number").tail(1)
            fig.add_trace(
                go.Scatter(
                    x=ends["step"], y=ends["value"], mode="markers", name="pruned here",
                    marker={"symbol": "x", "size": 7, "color": STATE_COLORS["pruned"]},
                    customdata=ends["number"],
                    hovertemplate="trial %{customdata} pruned at step %{x}<extra></extra>",
                )
            )  # fmt: skip
    top = curves[curves["number"].isin(best_set)]
    if not top.empty:
        xs, ys, nums = _joined(top)
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, mode="lines", name="best trials", customdata=nums,
                line={"color": BEST_COLOR, "width": 2},
                hovertemplate="trial %{customdata} step %{x}: %{y}<extra>best</extra>",
            )
        )  # fmt: skip
    n = curves["number"].nunique()
    fig.update_layout(
        title=f"Learning curves ({n} trials: the best and a sample of each state)",
        xaxis_title="step", yaxis_title=esc(metric), **_LAYOUT,
    )  # fmt: skip
    return fig


CUT_COLOR = "#bbbbbb"
"""Trials early stopping or Population Based Training cut (pruned), greyed."""
CONNECTOR_COLOR = "#555555"


def population_fig(
    curves: pd.DataFrame,
    connectors: pd.DataFrame,
    states: dict[int, str],
    parents: dict[int, int],
    metric: str,
) -> go.Figure:
    """A Population Based Training study: every trial's curve (``number, step, value``)
    by state, cut trials greyed, and one dashed trace of the ``connectors``
    (:func:`tuner.dashboard.frames.lineage`) from each parent's checkpoint to its
    child's first point. Hovering names the trial and its parent."""
    fig = go.Figure()
    if curves.empty:
        fig.update_layout(title="Population (no intermediate results yet)", **_LAYOUT)
        return fig
    curves = curves.assign(state=curves["number"].map(states).fillna("running"))
    # The cut trials first, under the others.
    for state in ("pruned", "failed", "stopped", "running", "completed"):
        part = curves[curves["state"] == state]
        if part.empty:
            continue
        xs, ys, nums = _joined(part)
        custom = [
            None if n is None else [int(n), f"trial {parents[n]}" if n in parents else "none"]
            for n in nums
        ]
        color = CUT_COLOR if state == "pruned" else STATE_COLORS[state]
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, mode="lines", name="cut" if state == "pruned" else state,
                customdata=custom, line={"color": color, "width": 1.5},
                hovertemplate="trial %{customdata[0]} (parent: %{customdata[1]}) step %{x}: "
                "%{y}<extra>" + state + "</extra>",
            )
        )  # fmt: skip
    if not connectors.empty:
        cx: list[Any] = []
        cy: list[Any] = []
        custom = []
        for row in connectors.itertuples(index=False):
            cx += [row.from_step, row.step, None]
            cy += [row.from_value, row.value, None]
            custom += [[row.number, row.parent]] * 2 + [None]
        fig.add_trace(
            go.Scatter(
                x=cx, y=cy, mode="lines", name="from a checkpoint", customdata=custom,
                line={"color": CONNECTOR_COLOR, "width": 1, "dash": "dash"},
                hovertemplate="trial %{customdata[0]} from trial %{customdata[1]}'s "
                "checkpoint<extra></extra>",
            )
        )  # fmt: skip
    n = curves["number"].nunique()
    fig.update_layout(
        title=f"Population ({n} trials; dashed: a trial starting from its parent's checkpoint)",
        xaxis_title="step", yaxis_title=esc(metric), **_LAYOUT,
    )  # fmt: skip
    return fig


def steps_reached_fig(reached: pd.DataFrame) -> go.Figure:
    """How many trials reached each step, by final state: early stopping's cuts."""
    fig = go.Figure()
    for state, part in reached.groupby("state", sort=False):
        fig.add_trace(
            go.Scatter(
                x=part["step"], y=part["trials"], mode="lines", name=str(state),
                line={"color": STATE_COLORS.get(str(state), "#444"), "shape": "hv"},
            )
        )  # fmt: skip
    fig.update_layout(
        title="Trials still going at each step (all trials)", xaxis_title="step",
        yaxis_title="trials", **_LAYOUT,
    )  # fmt: skip
    return fig


def timeline_fig(frame: pd.DataFrame, now: pd.Timestamp, most: int = 2000) -> go.Figure:
    """One row a node, each trial a bar from its start to its end (a running trial's to
    `now`), coloured by state: how busy the cluster was, and where trials failed.

    Args:
        frame: the trials, with ``number, state, started, duration_s, node``.
        now: the end of a running trial's bar.
        most: the latest trials drawn (by start).
    """
    df = frame.dropna(subset=["started"]).sort_values("started").tail(most).copy()
    df["node"] = df["node"].fillna("unknown").astype(str)
    ends = df["started"] + pd.to_timedelta(df["duration_s"].fillna(0.0), unit="s")
    running = df["state"].astype(str) == "running"
    ends = ends.where(~running, now)
    df["ms"] = (ends - df["started"]).dt.total_seconds().clip(lower=0.05) * 1000
    fig = go.Figure()
    for state, part in df.groupby(df["state"].astype(str), sort=False):
        fig.add_trace(
            go.Bar(
                base=part["started"], x=part["ms"], y=part["node"], orientation="h",
                name=state, marker={"color": STATE_COLORS.get(state, "#444")},
                customdata=part["number"],
                hovertemplate="trial %{customdata}<br>%{y}<extra>" + esc(state) + "</extra>",
            )
        )  # fmt: skip
    rows = max(1, df["node"].nunique())
    fig.update_layout(
        title="Trials by node over time", barmode="overlay", xaxis={"type": "date"},
        yaxis={"title": "node", "autorange": "reversed", "automargin": True},
        **{**_LAYOUT, "height": min(900, 160 + 40 * rows)},
    )  # fmt: skip
    return fig


def compare_curves_fig(curves: pd.DataFrame, metric: str) -> go.Figure:
    """The learning curves of a few trials, one colour each."""
    fig = go.Figure()
    for i, (number, curve) in enumerate(curves.groupby("number", sort=True)):
        color = PALETTE[i % len(PALETTE)]
        fig.add_trace(
            go.Scatter(x=curve["step"], y=curve["value"], mode="lines+markers", name=f"#{number}",
                       marker={"size": 4, "color": color}, line={"color": color})
        )  # fmt: skip
    fig.update_layout(
        title=f"Learning curves of {esc(metric)}", xaxis_title="step", yaxis_title=esc(metric),
        **_LAYOUT,
    )  # fmt: skip
    return fig


DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
SYMBOLS = ["circle", "square", "diamond", "triangle-up", "cross", "star"]


def compare_studies_fig(curves: pd.DataFrame, x: str = "number") -> go.Figure:
    """The best-so-far curve of several studies on one chart.

    Two studies can have the very same curve (same seed, same searcher): each study's
    line is narrower and differently dashed than the one before it, with its own marker
    symbol, smaller, so a curve drawn over another leaves it showing at the edges.
    """
    fig = go.Figure()
    n = curves["study"].nunique() if len(curves) else 0
    for i, (study, curve) in enumerate(curves.groupby("study", sort=False)):
        color = PALETTE[i % len(PALETTE)]
        fig.add_trace(
            go.Scatter(
                x=curve[x], y=curve["best"], mode="lines+markers", name=esc(study),
                line={"shape": "hv", "color": color, "dash": DASHES[i % len(DASHES)],
                      "width": 1.5 + 1.5 * (n - 1 - i)},
                marker={"size": 5 + 3 * (n - 1 - i), "color": color,
                        "symbol": SYMBOLS[i % len(SYMBOLS)]},
            )
        )  # fmt: skip
    fig.update_layout(
        title="Best so far", yaxis_title="best value",
        xaxis_title="trial number" if x == "number" else "seconds since the first trial started",
        **_LAYOUT,
    )  # fmt: skip
    return fig


# ---------------------------------------------------------------- several objectives

INFEASIBLE_COLOR = "#bbbbbb"


def _front_line(front: pd.DataFrame, x: str, y: str, x_mode: str, y_mode: str) -> pd.DataFrame:
    """The front's points in order along ``x``, for a staircase between them."""
    return front.sort_values([x, y], ascending=[x_mode == "min", y_mode == "min"])


def pareto_fig(points: pd.DataFrame, objectives: Sequence[tuple[str, str]]) -> go.Figure:
    """The trials in objective space: the Pareto front drawn, dominated feasible trials
    faint, infeasible ones apart (grey crosses). Two objectives: a scatter with the
    front as a staircase; three: a 3-D scatter; more: parallel coordinates."""
    cols = [f"metrics.{m}" for m, _ in objectives]
    names = [esc(m) + (" (max)" if mode == "max" else " (min)") for m, mode in objectives]
    front = points[points["pareto"]]
    rest = points[points["feasible"] & ~points["pareto"]]
    infeasible = points[~points["feasible"]]
    fig = go.Figure()
    if len(objectives) > 3:
        dims = [
            {"label": name, "values": points[col].to_numpy(float)}
            for name, col in zip(names, cols, strict=True)
        ]
        color = np.where(points["pareto"], 2, np.where(points["feasible"], 1, 0))
        fig.add_trace(
            go.Parcoords(
                dimensions=dims,
                line={"color": color, "cmin": 0, "cmax": 2, "colorscale": [
                    [0, INFEASIBLE_COLOR], [0.5, "#9ecae1"], [1, BEST_COLOR]]},
            )
        )  # fmt: skip
        fig.update_layout(title="Trials over the objectives (orange: the Pareto front)", **_LAYOUT)
        return fig
    groups: tuple[tuple[pd.DataFrame, str, dict[str, Any]], ...] = (
        (rest, "dominated", {"color": STATE_COLORS["completed"], "opacity": 0.35, "size": 6}),
        (infeasible, "infeasible", {"color": INFEASIBLE_COLOR, "symbol": "x", "size": 6}),
        (front, "Pareto front", {"color": BEST_COLOR, "size": 9,
                                 "line": {"color": "#000000", "width": 1}}),
    )  # fmt: skip
    hover = "trial %{customdata}<extra></extra>"
    for frame, label, marker in groups:
        if frame.empty:
            continue
        if len(objectives) == 3:
            fig.add_trace(
                go.Scatter3d(
                    x=frame[cols[0]], y=frame[cols[1]], z=frame[cols[2]], mode="markers",
                    name=label, marker={**marker, "size": marker["size"] - 2},
                    customdata=frame["number"], hovertemplate=hover,
                )
            )  # fmt: skip
        else:
            fig.add_trace(
                go.Scatter(
                    x=frame[cols[0]], y=frame[cols[1]], mode="markers", name=label,
                    marker=marker, customdata=frame["number"], hovertemplate=hover,
                )
            )  # fmt: skip
    if len(objectives) == 2 and len(front) > 1:
        line = _front_line(front, cols[0], cols[1], objectives[0][1], objectives[1][1])
        fig.add_trace(
            go.Scatter(
                x=line[cols[0]], y=line[cols[1]], mode="lines", name="front",
                line={"shape": "hv", "color": BEST_COLOR, "width": 1.5}, hoverinfo="skip",
            )
        )  # fmt: skip
    title = f"Pareto front: {len(front):,} of {len(points):,} completed trials"
    if len(objectives) == 3:
        scene = {"xaxis_title": names[0], "yaxis_title": names[1], "zaxis_title": names[2]}
        fig.update_layout(title=title, scene=scene, **{**_LAYOUT, "height": 480})
    else:
        fig.update_layout(title=title, xaxis_title=names[0], yaxis_title=names[1], **_LAYOUT)
    return fig


def hypervolume_fig(hv: pd.DataFrame) -> go.Figure:
    """The hypervolume of the feasible front after each trial."""
    fig = go.Figure(
        go.Scatter(
            x=hv["number"], y=hv["hypervolume"], mode="lines", name="hypervolume",
            line={"shape": "hv", "color": BEST_COLOR, "width": 2},
        )
    )  # fmt: skip
    fig.update_layout(
        title="Hypervolume of the front over trials", xaxis_title="trial number",
        yaxis_title="hypervolume", **_LAYOUT,
    )  # fmt: skip
    return fig


def compare_fronts_fig(
    fronts: dict[str, pd.DataFrame], objectives: Sequence[tuple[str, str]]
) -> go.Figure:
    """The Pareto fronts of several studies over their first two shared objectives."""
    cols = [f"metrics.{m}" for m, _ in objectives[:2]]
    fig = go.Figure()
    for i, (study, points) in enumerate(fronts.items()):
        color = PALETTE[i % len(PALETTE)]
        front = _front_line(
            points[points["pareto"]], cols[0], cols[1], objectives[0][1], objectives[1][1]
        )
        fig.add_trace(
            go.Scatter(
                x=front[cols[0]], y=front[cols[1]], mode="lines+markers", name=esc(study),
                line={"shape": "hv", "color": color}, marker={"size": 6, "color": color},
                customdata=front["number"], hovertemplate="trial %{customdata}<extra></extra>",
            )
        )  # fmt: skip
    fig.update_layout(
        title="Pareto fronts", xaxis_title=esc(objectives[0][0]),
        yaxis_title=esc(objectives[1][0]), **_LAYOUT,
    )  # fmt: skip
    return fig
