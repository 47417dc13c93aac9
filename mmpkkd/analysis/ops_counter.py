"""Count multiplications, additions, parameters and energy of a network.

One image is traced through the model by mmengine's
:class:`~mmengine.analysis.FlopAnalyzer`, which attributes every op to the
module that ran it; the op handles of :mod:`mmpkkd.analysis.op_handles`
give each op's multiplications, additions and sign operations (see
:data:`CONVENTION`), so nothing is hard-coded per network. Every *leaf*
module (a module without children) that ran is a row; ops written directly
in a non-leaf ``forward`` (the residual ``out += identity`` of a ResNet
block) are a row ``<module> [elementwise]``. Forward hooks, run during the
same trace, give each row its output shape and call count.

Counting convention (per image, inference, batch statistics folded):

* conv MAC (``nn.Conv*d``) = 1 multiplication + 1 addition;
* adder MAC (:class:`~mmpkkd.models.layers.Adder2d`, ``|x - w|``
  accumulated) = 2 additions (subtract, accumulate) + 1 absolute value;
  the abs only clears the sign bit, is listed as a *sign op* and costs no
  energy;
* a bias adds 1 addition per output element;
* BatchNorm / GroupNorm / LayerNorm = 1 multiplication + 1 addition per
  output element (inference: ``y = a * x + b`` with the statistics folded
  into ``a`` and ``b``; adder networks keep their BN layers, so it is not
  folded into the adder weights);
* linear = 1 multiplication + 1 addition per MAC (+ bias);
* ReLU = 1 sign op per element (a select on the sign bit, no energy);
  ReLU6 / Hardtanh = 1 sign op + 1 comparison (an addition) per element;
* max pooling = ``k - 1`` comparisons (additions) per output over a
  window of ``k`` elements; average pooling = ``k - 1`` additions + 1
  multiplication (by ``1 / k``) per output;
* element-wise ``+``/``-`` outside a leaf module = 1 addition per output
  element, ``*``/``/`` = 1 multiplication;
* identity, dropout, drop-path, flatten: nothing. The data preprocessor
  (mean/std normalisation) is not part of the network and is not counted.

Energy uses the 45 nm figures of Horowitz (ISSCC 2014), the ones of the
AdderNet/PKKD papers: see :data:`ENERGY_PJ`.
"""
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer

from mmpkkd.apis import TensorModeWrapper
from .op_handles import ADDER_KIND_PATTERN, OP_HANDLES, adder_handle

#: Energy per operation in picojoule, 45 nm (Horowitz, ISSCC 2014, Fig.
#: 1.1.9). ``int8`` prices every operation as an 8-bit one: what an int8
#: network would cost if its accumulators were 8-bit too (a lower bound).
ENERGY_PJ: Dict[str, Dict[str, float]] = {
    'fp32': dict(add=0.9, mult=3.7),
    'int32': dict(add=0.1, mult=3.1),
    'int8': dict(add=0.03, mult=0.2),
}

CONVENTION = (
    'Per image, inference. conv MAC = 1 mult + 1 add; adder MAC = '
    '|x - w| accumulated = 2 adds (subtract + accumulate) + 1 abs; abs and '
    'ReLU are sign-bit ops (column "sign"), counted but given no energy; '
    'bias = 1 add per output; BN (also GN/LN) = 1 mult + 1 add per element '
    '(inference affine, kept in adder nets, not folded); linear = 1 mult + '
    '1 add per MAC; max-pool = k-1 compare-adds per output, avg-pool = k-1 '
    'adds + 1 mult per output; residual +/- = 1 add per element. Energy '
    '(45 nm, Horowitz 2014): fp32 add 0.9 pJ, mult 3.7 pJ; int32 add '
    '0.1 pJ, mult 3.1 pJ; int8 add 0.03 pJ, mult 0.2 pJ (every op priced '
    'at 8 bits). Data preprocessing not counted.')


def energy_pj(mults: int, adds: int, precision: str = 'fp32') -> float:
    """Energy of ``mults`` multiplications and ``adds`` additions, in pJ.

    Args:
        mults (int): Number of multiplications.
        adds (int): Number of additions (subtractions, comparisons).
        precision (str): ``'fp32'``, ``'int32'`` or ``'int8'``.

    Returns:
        float: ``mults * E_mult + adds * E_add`` in picojoule.

    Example:
        >>> energy_pj(mults=10, adds=20, precision='fp32')  # 37 + 18
        55.0
    """
    if precision not in ENERGY_PJ:
        raise ValueError(f'precision must be one of {sorted(ENERGY_PJ)}, '
                         f'got {precision!r}.')
    cost = ENERGY_PJ[precision]
    return mults * cost['mult'] + adds * cost['add']


@dataclass
class LayerOps:
    """Operations of one module over all its calls in one forward pass.

    Attributes:
        name (str): Module name (``'backbone.layer1.0.conv1'``); ops
            written in a non-leaf module's own ``forward`` are
            ``'<module> [elementwise]'``.
        op (str): Module class (``'Adder2d'``), or ``'elementwise'``.
        out_shape (tuple): Output shape of the module's last call, batch
            included.
        mults (int): Multiplications.
        adds (int): Additions (subtractions and comparisons included).
        sign_ops (int): Sign-bit operations (abs, ReLU); no energy.
        macs (int): Multiply- (or adder-) accumulates of conv/adder/linear
            layers, 0 for the others.
        params (int): Parameters owned by the module itself.
        calls (int): How many times it ran (a shared ReLU runs twice).
        counted (bool): False when one of its ops has no handle (that op
            then counts 0 and is listed in ``OpsReport.uncounted``).
    """
    name: str
    op: str
    out_shape: Tuple[int, ...] = ()
    mults: int = 0
    adds: int = 0
    sign_ops: int = 0
    macs: int = 0
    params: int = 0
    calls: int = 0
    counted: bool = True

    def energy_pj(self, precision: str = 'fp32') -> float:
        """Energy of this row in picojoule (sign ops are free)."""
        return energy_pj(self.mults, self.adds, precision)


@dataclass
class OpsReport:
    """Per-layer and total operation counts of one network.

    Attributes:
        label (str): Name of the network in reports (``'CNN'``, ``'ANN'``).
        input_shape (tuple): ``(C, H, W)`` of the image.
        layers (list[LayerOps]): Rows in execution order.
        total_params (int): All parameters of the model.
        uncounted (list[str]): Traced op kinds without a handle
            (``'aten::gelu'``); they count 0.
    """
    label: str
    input_shape: Tuple[int, ...]
    layers: List[LayerOps] = field(default_factory=list)
    total_params: int = 0
    uncounted: List[str] = field(default_factory=list)

    @property
    def mults(self) -> int:
        return sum(layer.mults for layer in self.layers)

    @property
    def adds(self) -> int:
        return sum(layer.adds for layer in self.layers)

    @property
    def sign_ops(self) -> int:
        return sum(layer.sign_ops for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def energy_pj(self, precision: str = 'fp32') -> float:
        """Total energy in picojoule."""
        return energy_pj(self.mults, self.adds, precision)

    def layer(self, name: str) -> LayerOps:
        """The row of module ``name``."""
        for row in self.layers:
            if row.name == name:
                return row
        raise KeyError(f'No layer {name!r} ran in {self.label}; known: '
                       f'{[row.name for row in self.layers]}')


class _CallRecorder:
    """Forward hooks noting each module's calls and last output shape, in
    the order the modules first finish."""

    def __init__(self, model: nn.Module):
        self.calls: Dict[str, List] = {}  # name -> [calls, out_shape]
        self.handles = [
            module.register_forward_hook(self._hook(name))
            for name, module in model.named_modules()
            if not name.startswith('data_preprocessor')
        ]

    def _hook(self, name: str):

        def hook(module, args, output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            entry = self.calls.setdefault(name, [0, ()])
            entry[0] += 1
            if isinstance(out, torch.Tensor):  # traced sizes are tensors
                entry[1] = tuple(int(size) for size in out.shape)

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _analyze(model: nn.Module, x: torch.Tensor,
             recorder: _CallRecorder) -> FlopAnalyzer:
    """Trace ``model`` once (twice if the adder op traces under a name
    :data:`OP_HANDLES` does not know) with our handles."""
    analyzer = FlopAnalyzer(TensorModeWrapper(model), (x, ))
    analyzer.set_op_handle(**OP_HANDLES)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analyzer.total()  # runs the trace
    renamed = [kind for kind in analyzer.unsupported_ops()
               if ADDER_KIND_PATTERN in kind.lower()]
    if renamed:
        recorder.calls.clear()
        analyzer.set_op_handle(**{kind: adder_handle for kind in renamed})
        analyzer.total()
    return analyzer


def _analyzer_name(name: str) -> str:
    """Name in the analyzer, which sees the model as
    ``TensorModeWrapper.model``."""
    return f'model.{name}' if name else 'model'


def _our_name(analyzer_name: str) -> str:
    return analyzer_name[len('model.'):] if '.' in analyzer_name else ''


def _rows(model: nn.Module, analyzer: FlopAnalyzer,
          recorder: _CallRecorder) -> List[LayerOps]:
    """A row per leaf that ran and per non-leaf with ops of its own."""
    counts = {_our_name(name): c
              for name, c in analyzer.by_module_and_operator().items()
              if name}
    modules = dict(model.named_modules())
    rows = []
    for name, (calls, out_shape) in recorder.calls.items():
        module = modules[name]
        children = [f'{name}.{child}' if name else child
                    for child, _ in module.named_children()]
        own = Counter(counts.get(name, {}))
        for child in children:
            own.subtract(counts.get(child, {}))
        if children and not any(own[k] > 0 for k in ('mults', 'adds',
                                                     'sign_ops')):
            continue
        unsupported = analyzer.unsupported_ops(_analyzer_name(name))
        rows.append(LayerOps(
            name=name if not children else
            (f'{name} [elementwise]' if name else '[elementwise]'),
            op=type(module).__name__ if not children else 'elementwise',
            out_shape=out_shape, mults=own['mults'], adds=own['adds'],
            sign_ops=own['sign_ops'], macs=own['macs'], calls=calls,
            params=0 if children else sum(
                p.numel() for p in module.parameters(recurse=False)),
            counted=bool(children) or not unsupported))
    return rows


@torch.no_grad()
def count_ops(model: nn.Module,
              input_shape: Sequence[int] = (3, 32, 32),
              label: str = 'model') -> OpsReport:
    """Count the operations of one inference of ``model`` on one image.

    The model is traced in eval mode on one random image of
    ``input_shape`` (training mode is restored afterwards); see
    :data:`CONVENTION` for what is counted. An mmpretrain classifier is
    called with ``mode='tensor'`` (backbone, neck and head, no data
    preprocessor), any other module with ``model(x)``.

    Args:
        model (nn.Module): The network.
        input_shape (Sequence[int]): ``(C, H, W)`` of one image.
        label (str): Name of the network in reports.

    Returns:
        OpsReport: Rows in execution order and totals.

    Example:
        >>> report = count_ops(ann_resnet20, (3, 32, 32), label='ANN')
        >>> row = report.layer('backbone.layer1.0.conv1')  # 16->16, 3x3
        >>> row.out_shape, row.macs, row.mults, row.adds
        ((1, 16, 32, 32), 2359296, 0, 4718592)
    """
    if len(input_shape) != 3:
        raise ValueError(f'input_shape must be (C, H, W), got '
                         f'{tuple(input_shape)}; e.g. --shape 3 32 32.')
    training = model.training
    model.eval()
    param = next(model.parameters(), None)
    device = param.device if param is not None else 'cpu'
    x = torch.randn(1, *input_shape, device=device)
    recorder = _CallRecorder(model)
    try:
        analyzer = _analyze(model, x, recorder)
    finally:
        recorder.remove()
        model.train(training)

    rows = _rows(model, analyzer, recorder)
    total_params = sum(p.numel() for p in model.parameters())
    missing = total_params - sum(row.params for row in rows)
    if missing:
        rows.append(LayerOps(name='(parameters of modules not run / '
                             'not leaves)', op='-', params=missing))
    return OpsReport(label=label, input_shape=tuple(input_shape),
                     layers=rows, total_params=total_params,
                     uncounted=sorted(analyzer.unsupported_ops()))
