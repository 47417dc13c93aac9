"""Markdown report of :class:`~mmpkkd.analysis.OpsReport` s, side by side.

Totals (multiplications, additions, sign ops, MACs, parameters, energy in
every precision of :data:`~mmpkkd.analysis.ENERGY_PJ` and its ratio to the
first network), then one row per layer with each network's columns.
"""
from typing import List, Sequence

from .ops_counter import CONVENTION, ENERGY_PJ, OpsReport


def _merged_names(reports: Sequence[OpsReport]) -> List[str]:
    """Row names of all reports, each report's order kept."""
    names: List[str] = []
    for report in reports:
        previous = None
        for row in report.layers:
            if row.name not in names:
                # right after this report's previous row (first: at front)
                at = 0 if previous is None else names.index(previous) + 1
                names.insert(at, row.name)
            previous = row.name
    return names


def _int(n: int) -> str:
    return f'{n:,}'


def _uj(pj: float) -> str:
    return f'{pj / 1e6:.3f}'


def format_markdown(reports: Sequence[OpsReport],
                    title: str = 'Operation count',
                    notes: Sequence[str] = ()) -> str:
    """Markdown report: totals and per-layer rows, networks side by side.

    Args:
        reports (Sequence[OpsReport]): One per network (e.g. CNN, ANN).
        title (str): First heading.
        notes (Sequence[str]): Extra lines (e.g. a missing twin).

    Returns:
        str: The report, ending with a newline.
    """
    if not reports:
        raise ValueError('format_markdown needs at least one OpsReport.')
    base = reports[0]
    lines = [f'# {title}', '']
    shape = ' x '.join(str(s) for s in base.input_shape)
    lines.append(f'Input: one image of {shape}. {CONVENTION}')
    lines.append('')
    for note in notes:
        lines.append(f'- {note}')
    for report in reports:
        if report.uncounted:
            lines.append(f'- {report.label}: no counting rule for '
                         f'{", ".join(report.uncounted)} (counted as 0).')
    lines += ['', '## Totals', '']
    lines.append('| | ' + ' | '.join(r.label for r in reports) + ' |')
    lines.append('|---|' + '---:|' * len(reports))
    total_rows = [
        ('multiplications', lambda r: _int(r.mults)),
        ('additions', lambda r: _int(r.adds)),
        ('sign ops (abs, ReLU; 0 pJ)', lambda r: _int(r.sign_ops)),
        ('conv/adder/linear MACs', lambda r: _int(r.macs)),
        ('parameters', lambda r: _int(r.total_params)),
    ] + [(f'energy {p} (uJ)', lambda r, p=p: _uj(r.energy_pj(p)))
         for p in ENERGY_PJ]
    for precision in ENERGY_PJ if len(reports) > 1 else ():
        ref = base.energy_pj(precision)
        total_rows.append(
            (f'energy {precision} / {base.label}',
             lambda r, p=precision, ref=ref: f'{r.energy_pj(p) / ref:.3f}'
             if ref else '-'))
    for name, value in total_rows:
        lines.append(f'| {name} | ' +
                     ' | '.join(value(r) for r in reports) + ' |')

    lines += ['', '## Per layer', '']
    per_model = ('op', 'mult', 'add', 'sign', 'params',
                 *(f'uJ {p}' for p in ENERGY_PJ))
    header = ['layer', 'output'] + [f'{r.label} {c}' for r in reports
                                    for c in per_model]
    lines.append('| ' + ' | '.join(header) + ' |')
    lines.append('|---|---|' +
                 ('---|' + '---:|' * (len(per_model) - 1)) * len(reports))
    by_name = [{row.name: row for row in r.layers} for r in reports]
    for name in _merged_names(reports):
        rows = [rows.get(name) for rows in by_name]
        shapes = []
        for row in rows:
            if row is not None and row.out_shape:
                text = 'x'.join(str(s) for s in row.out_shape[1:])
                if text not in shapes:
                    shapes.append(text)
        cells = [name, ' / '.join(shapes)]
        for row in rows:
            if row is None:
                cells += [''] * len(per_model)
                continue
            op = row.op if row.counted else f'{row.op} (no rule)'
            if row.calls > 1:
                op += f' x{row.calls}'
            cells += [
                op, _int(row.mults), _int(row.adds), _int(row.sign_ops),
                _int(row.params),
                *(_uj(row.energy_pj(p)) for p in ENERGY_PJ)
            ]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'
