"""Figures drawn without pyplot: no global backend switch, no display.

:func:`new_figure` makes a :class:`matplotlib.figure.Figure` directly
(not through :mod:`matplotlib.pyplot`), so drawing here neither changes
the backend of the calling program nor keeps figures open in pyplot's
registry; :func:`save_figure` writes it as PNG (matplotlib picks its Agg
renderer for the file). matplotlib is imported when a figure is made.

Example:
    >>> fig, axes = new_figure(1, 2)
    >>> axes[0].plot([0, 1], [1, 0])
    >>> save_figure(fig, 'work_dirs/fig.png', panels=2).num_axes
    2
"""
import os
import os.path as osp
from dataclasses import dataclass
from typing import Any, Sequence, Tuple

#: Colours of the teacher (CNN) and the student (ANN) in every figure.
TEACHER_COLOR, STUDENT_COLOR = 'tab:blue', 'tab:orange'


@dataclass
class FigureInfo:
    """A written figure: its path and panel (subplot) count.

    Twin x axes drawn inside a panel are not panels: ``num_panels`` counts
    the subplots, ``num_axes`` every matplotlib ``Axes``.
    """
    path: str
    num_panels: int
    num_axes: int


def new_figure(rows: int = 1,
               cols: int = 1,
               figsize: Tuple[float, float] = (12, 4.5)
               ) -> Tuple[Any, Sequence[Any]]:
    """A figure of ``rows x cols`` panels, made without pyplot.

    Returns:
        tuple: ``(matplotlib.figure.Figure, axes)``, the axes flattened in
        row-major order.
    """
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, list(axes.flat)


def save_figure(fig, path: str, panels: int) -> FigureInfo:
    """Write ``fig`` to the PNG ``path`` (folders created).

    Args:
        fig (matplotlib.figure.Figure): The figure.
        path (str): PNG file to write.
        panels (int): Subplots of the figure (twin axes not counted).

    Returns:
        FigureInfo: ``path``, ``panels`` and every ``Axes`` of the figure.
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return FigureInfo(path=path, num_panels=panels, num_axes=len(fig.axes))
