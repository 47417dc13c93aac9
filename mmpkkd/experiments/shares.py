"""The gradient shares a distillation run logged, read back per run and
summarised per setting of a sweep.

Training logs ``student.grad_share.<term>`` (see
:class:`~mmpkkd.engine.GradShareHook`) when it measures them; log lines in
between repeat the latest measurement. :func:`logged_shares` keeps one
entry per measurement, :func:`share_summary` splits them into the share at
initialisation and the mean share over the rest of the run.
"""
from typing import Dict, List, Optional, Tuple

from mmpkkd.visualization.curves import find_scalar_files, read_scalars
from .stats import mean_std

SHARE_PREFIX = 'student.grad_share.'


def logged_shares(work_dir: str) -> List[Tuple[int, Dict[str, float]]]:
    """One ``(iteration logged, {term: share})`` per measurement.

    Consecutive log lines with the same shares are one measurement (log
    lines repeat the latest one). Attempts of a resumed run are read in
    order.

    Example:
        >>> logged_shares('work_dirs/pkkd_fm')[0]
        (2, {'cls': 0.318, 'kd': 0.015, 'mid': 0.667})
    """
    out: List[Tuple[int, Dict[str, float]]] = []
    try:
        paths = find_scalar_files(work_dir)
    except FileNotFoundError:
        return out
    for path in paths:
        for rec in read_scalars(path)['train']:
            shares = {
                key[len(SHARE_PREFIX):]: float(value)
                for key, value in rec.items() if key.startswith(SHARE_PREFIX)
            }
            if shares and (not out or out[-1][1] != shares):
                out.append((int(rec.get('iter', rec.get('step', 0))),
                            shares))
    return out


def share_summary(work_dir: str) -> Optional[Dict[str, Dict[str, float]]]:
    """``{'init': {term: share}, 'train': {term: mean share}}`` of a run.

    ``init`` is the first measurement (the first iteration's gradient);
    ``train`` the mean of the later ones (``init`` again when there is
    only one). None when the run logged no shares.
    """
    shares = logged_shares(work_dir)
    if not shares:
        return None
    init = shares[0][1]
    later = [s for _, s in shares[1:]] or [init]
    train = {
        term: sum(s.get(term, 0.0) for s in later) / len(later)
        for term in init
    }
    return {'init': init, 'train': train}


def summarize_shares(work_dirs: List[str]) -> Dict[str, Dict[str, tuple]]:
    """Mean and std over runs (seeds) of each term's ``init`` and
    ``train`` share (:func:`~mmpkkd.experiments.stats.mean_std`).

    Returns:
        dict: ``{'init': {term: (mean, std)}, 'train': {...}}``; empty
        when no run logged shares.
    """
    runs = [s for s in (share_summary(d) for d in work_dirs) if s]
    if not runs:
        return {}
    terms = sorted({t for run in runs for t in run['init']})
    return {
        phase: {
            term: mean_std([run[phase].get(term, 0.0) for run in runs])
            for term in terms
        }
        for phase in ('init', 'train')
    }
