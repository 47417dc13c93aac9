"""How much each student loss term of a distiller moves the student.

:func:`train_and_measure` trains a config's distiller for a few iterations,
exactly as ``tools/train.py`` would (same data loader, optimizer wrapper
with AdderNet's adaptive lr, learning rate of the first epoch), and
measures at chosen iterations each student loss term's value and share of
the gradient on the student's conv/adder weights
(:mod:`mmpkkd.models.distillers.grad_share`). :func:`mid_attribution` then
splits the decrease of ``L_mid`` over those iterations into the part the
connectors made by themselves and the part the student's features made.
"""
import copy
from typing import Dict, Iterator, List, Sequence

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner

from mmpkkd.models.builder import build_model
from mmpkkd.models.distillers.grad_share import SHARE_KEY, term_name

#: parameter-name prefixes of the student side of a distiller
STUDENT_PARTS = ('student.', 'student_connectors.')
CONNECTOR_PART = 'student_connectors.'


def _endless(loader) -> Iterator[dict]:
    while True:
        yield from loader


def _row(iteration: int, log_vars: Dict[str, torch.Tensor]) -> dict:
    row = {'iter': iteration}
    for key, value in log_vars.items():
        if key.startswith('student.') or key.startswith('teacher.'):
            row[key] = float(value.detach()) if isinstance(
                value, torch.Tensor) else float(value)
    return row


def build_training(cfg: Config, seed: int = 0) -> tuple:
    """A config's distiller, training data loader and optimizer wrapper,
    as ``tools/train.py`` builds them (first epoch's learning rate).

    Args:
        cfg (Config): A distiller config (``model.type='PKKDDistiller'``).
        seed (int): Seed of the weights and the data order.

    Returns:
        tuple: ``(model, loader, optim_wrapper)``, the model initialised and
        in training mode.

    Raises:
        ValueError: The model does not measure gradient shares (it is not a
            distiller).
    """
    torch.manual_seed(seed)
    model = build_model(cfg.model)
    if not hasattr(model, 'request_grad_shares'):
        raise ValueError(
            f'{cfg.model.type} does not measure gradient shares; this tool '
            'needs a distiller config (configs/pkkd/...).')
    model.init_weights()
    model.train()
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=seed)
    return model, loader, build_optim_wrapper(model, cfg.optim_wrapper)


def train_and_measure(cfg: Config,
                      iters: int,
                      measure_at: Sequence[int],
                      seed: int = 0) -> tuple:
    """Train ``cfg``'s distiller ``iters`` iterations, measuring shares.

    Args:
        cfg (Config): A distiller config (``model.type='PKKDDistiller'``).
        iters (int): Training iterations.
        measure_at (Sequence[int]): 1-based iterations whose losses and
            gradient shares are recorded (``1`` = at initialisation, before
            the first update).
        seed (int): Seed of the weights and the data order.

    Returns:
        tuple: ``(rows, model, initial_state, batch)``: one dict per measured
        iteration (``'iter'``, the losses, ``student.grad_share.<term>``),
        the trained model, its state dict before training and the first
        batch (preprocessed), for :func:`mid_attribution`.
    """
    model, loader, optim_wrapper = build_training(cfg, seed)
    initial_state = copy.deepcopy(model.state_dict())
    rows: List[dict] = []
    first_batch = None
    data_iter = _endless(loader)
    wanted = set(measure_at)
    for iteration in range(1, iters + 1):
        data = next(data_iter)
        if first_batch is None:
            first_batch = model.data_preprocessor(copy.deepcopy(data), True)
        if iteration in wanted:
            model.request_grad_shares()
        log_vars = model.train_step(data, optim_wrapper)
        if iteration in wanted:
            rows.append(_row(iteration, log_vars))
    return rows, model, initial_state, first_batch


@torch.no_grad()
def _unweighted_mid(model: nn.Module, batch: dict) -> float:
    losses = model.loss(batch['inputs'], batch['data_samples'])
    weight = model.loss_mid.loss_weight
    if 'student.loss_mid' not in losses or weight == 0:
        return float('nan')
    return float(losses['student.loss_mid']) / weight


def mid_attribution(model: nn.Module, initial_state: Dict[str, torch.Tensor],
                    batch: dict) -> Dict[str, float]:
    """``L_mid / beta`` on one batch for the four mixes of student features
    and connectors before and after training (teacher as trained).

    The connectors' own part of the decrease is
    ``L(features 0, connectors N) - L(features 0, connectors 0)``, the
    features' ``L(features N, connectors 0) - L(features 0, connectors 0)``.
    Parameters and BN statistics are restored afterwards.

    Returns:
        dict[str, float]: ``before`` (both at 0), ``after`` (both at N),
        ``connectors_only`` (connectors at N, features at 0) and
        ``features_only`` (features at N, connectors at 0).
    """
    final_state = copy.deepcopy(model.state_dict())

    def mix(student_from: dict, connectors_from: dict) -> float:
        state = dict(final_state)
        for key in state:
            if key.startswith(CONNECTOR_PART):
                state[key] = connectors_from[key]
            elif key.startswith('student.'):
                state[key] = student_from[key]
        model.load_state_dict(state)
        return _unweighted_mid(model, batch)

    try:
        out = {
            'before': mix(initial_state, initial_state),
            'after': mix(final_state, final_state),
            'connectors_only': mix(initial_state, final_state),
            'features_only': mix(final_state, initial_state),
        }
    finally:
        model.load_state_dict(final_state)
    return out


def share_columns(rows: Sequence[dict]) -> List[str]:
    """The share keys present in ``rows``, in first-seen order."""
    keys: List[str] = []
    for row in rows:
        for key in row:
            if f'.{SHARE_KEY}.' in key and key not in keys:
                keys.append(key)
    return keys


def format_table(rows: Sequence[dict]) -> str:
    """A plain-text table: one line per measured iteration.

    Example:
        >>> print(format_table([{'iter': 1, 'student.loss_cls': 2.3,
        ...                      'student.grad_share.cls': 1.0}]))
        iter  loss cls  share cls
           1    2.3000     100.0%
    """
    shares = share_columns(rows)
    terms = [term_name(k.rsplit('.', 1)[-1]) for k in shares]
    header = ['iter'] + [f'loss {t}' for t in terms] + \
        [f'share {t}' for t in terms]
    lines = ['  '.join(f'{h:>9s}' if i else f'{h:4s}'
                       for i, h in enumerate(header))]
    for row in rows:
        cells = [f'{row["iter"]:4d}']
        for term in terms:
            value = row.get(f'student.loss_{term}', float('nan'))
            cells.append(f'{value:9.4f}')
        for key in shares:
            cells.append(f'{100 * row.get(key, float("nan")):8.1f}%')
        lines.append('  '.join(cells))
    return '\n'.join(lines)
