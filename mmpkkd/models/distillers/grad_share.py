"""Each loss term's share of the gradient on a network's weights.

A term that is in the loss is not necessarily acting: with ``beta * L_mid``
a thousand times weaker than the logit terms, PKKD is logit distillation.
:func:`gradient_shares` measures, for every loss term ``t`` and every
conv/adder layer ``l`` of the student, the norm of ``d t / d W_l``, and
reports

    share_t = mean over layers l of  ||g_{t,l}|| / sum_u ||g_{u,l}||

i.e. each term's fraction of the gradient norm, layer by layer, averaged
over the layers with a non-zero gradient. Every layer counts alike, as it
does in the update once AdderNet's adaptive learning rate has normalised
each adder layer's gradient (which leaves the per-layer fractions
unchanged). The shares of all terms sum to 1. A term that reaches only
the layers before a distilled layer (``L_mid``) has share 0 in the layers
after it, so its share is also its reach.
"""
from typing import Dict, List, Mapping, Sequence, Tuple

import torch
import torch.nn as nn

#: prefix of the logged keys, e.g. ``student.grad_share.mid``
SHARE_KEY = 'grad_share'


def conv_weights(model: nn.Module) -> List[Tuple[str, nn.Parameter]]:
    """The trainable 4-D (conv or adder) weights of ``model``, by name.

    Example:
        >>> [n for n, _ in conv_weights(nn.Sequential(nn.Conv2d(1, 2, 3)))]
        ['0.weight']
    """
    return [(name, param) for name, param in model.named_parameters()
            if param.dim() == 4 and param.requires_grad]


def term_name(loss_key: str) -> str:
    """``'student.loss_mid'`` -> ``'mid'``; ``'loss_kd'`` -> ``'kd'``."""
    name = loss_key.rsplit('.', 1)[-1]
    return name[len('loss_'):] if name.startswith('loss_') else name


def gradient_norms(terms: Mapping[str, torch.Tensor],
                   params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Norm of each term's gradient on each parameter, ``(terms, params)``.

    The graph is kept (``retain_graph=True``), so the caller can still run
    its own backward afterwards. Parameters a term does not reach get 0.
    No device synchronisation happens here.

    Args:
        terms (Mapping[str, Tensor]): Scalar loss terms of one graph.
        params (Sequence[Tensor]): The parameters to differentiate.

    Returns:
        Tensor: ``(len(terms), len(params))`` float32 gradient norms.

    Example:
        >>> w = torch.ones(3, requires_grad=True)
        >>> gradient_norms({'a': (2 * w).sum(), 'b': w.sum()}, [w])
        tensor([[3.4641],
                [1.7321]])
    """
    rows = []
    for value in terms.values():
        grads = torch.autograd.grad(
            value, list(params), retain_graph=True, allow_unused=True)
        rows.append(
            torch.stack([
                torch.zeros((), device=p.device) if g is None else
                torch.linalg.vector_norm(g.float())
                for p, g in zip(params, grads)
            ]))
    return torch.stack(rows)


def shares_from_norms(norms: torch.Tensor) -> torch.Tensor:
    """Per-layer fractions of the gradient norm, averaged over layers.

    Args:
        norms (Tensor): ``(terms, layers)`` gradient norms.

    Returns:
        Tensor: ``(terms,)`` shares that sum to 1 (all zeros when no term
        reaches any layer, NaN when a gradient is not finite).

    Example:
        >>> shares_from_norms(torch.tensor([[3., 1.], [1., 0.]]))
        tensor([0.8750, 0.1250])
    """
    total = norms.sum(dim=0)
    # a layer no term reaches is left out; a non-finite gradient (a run
    # diverging) makes every share NaN rather than 0
    reached = total != 0
    fractions = norms[:, reached] / total[reached]
    if fractions.shape[1] == 0:
        return torch.zeros(norms.shape[0], device=norms.device)
    return fractions.mean(dim=1)


def gradient_shares(terms: Mapping[str, torch.Tensor],
                    params: Sequence[torch.Tensor],
                    prefix: str = '') -> Dict[str, torch.Tensor]:
    """Each term's share of the gradient on ``params`` (see module doc).

    Args:
        terms (Mapping[str, Tensor]): Scalar loss terms of one graph, e.g.
            ``{'student.loss_cls': ..., 'student.loss_mid': ...}``.
        params (Sequence[Tensor]): Weights the shares are measured on
            (:func:`conv_weights` of the student).
        prefix (str): Prefix of the returned keys, e.g. ``'student.'``.

    Returns:
        dict[str, Tensor]: ``{f'{prefix}grad_share.<term>': share}`` with
        ``<term>`` from :func:`term_name`; 0-d tensors on the device.

    Example:
        >>> w = torch.ones(3, requires_grad=True)
        >>> out = gradient_shares({'loss_a': (3 * w).sum(),
        ...                        'loss_b': w.sum()}, [w])
        >>> {k: round(v.item(), 2) for k, v in out.items()}
        {'grad_share.a': 0.75, 'grad_share.b': 0.25}
    """
    if not terms:
        return {}
    shares = shares_from_norms(gradient_norms(terms, params))
    return {
        f'{prefix}{SHARE_KEY}.{term_name(key)}': share
        for key, share in zip(terms, shares)
    }
