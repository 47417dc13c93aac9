"""Plotting helpers shared by the analysis figures (features, weights,
curves): the pyplot import and the written-figure record.

matplotlib is imported (Agg backend) only when :func:`pyplot` is called.

Example:
    >>> plt = pyplot()
    >>> fig, axes = plt.subplots(1, 2)
    >>> save_figure(fig, 'work_dirs/fig.png', panels=2).num_axes
    2
"""
import os
import os.path as osp
from dataclasses import dataclass

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


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path: str, panels: int) -> FigureInfo:
    """Write ``fig`` to the PNG ``path`` (folders created) and close it.

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
    info = FigureInfo(path=path, num_panels=panels, num_axes=len(fig.axes))
    pyplot().close(fig)
    return info
