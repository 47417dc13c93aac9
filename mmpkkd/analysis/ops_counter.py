"""Count multiplications, additions, parameters and energy of a network.

Counting is done by running one image through the model with forward hooks
on every module: each *leaf* module (a module without children) is counted
from the shapes of the input and output it actually saw, by a rule chosen
from its class (see :data:`CONVENTION`), so nothing is hard-coded per
network. Element-wise tensor arithmetic written directly in a non-leaf
``forward`` (the residual ``out += identity`` of a ResNet block) is caught
by a :class:`torch.overrides.TorchFunctionMode` and reported as a row
``<module> [elementwise]``.

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
import inspect
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from mmpkkd.models.layers import Adder2d

#: Energy per operation in picojoule, 45 nm (Horowitz, ISSCC 2014).
ENERGY_PJ: Dict[str, Dict[str, float]] = {
    'fp32': dict(add=0.9, mult=3.7),
    'int32': dict(add=0.1, mult=3.1),
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
    '0.1 pJ, mult 3.1 pJ. Data preprocessing not counted.')


def energy_pj(mults: int, adds: int, precision: str = 'fp32') -> float:
    """Energy of ``mults`` multiplications and ``adds`` additions, in pJ.

    Args:
        mults (int): Number of multiplications.
        adds (int): Number of additions (subtractions, comparisons).
        precision (str): ``'fp32'`` or ``'int32'``.

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
        name (str): Module name (``'backbone.layer1.0.conv1'``); residual
            arithmetic of a block is ``'<block> [elementwise]'``.
        op (str): Module class (``'Adder2d'``), or ``'elementwise'``.
        out_shape (tuple): Output shape of the last call, batch included.
        mults (int): Multiplications.
        adds (int): Additions (subtractions and comparisons included).
        sign_ops (int): Sign-bit operations (abs, ReLU); no energy.
        macs (int): Multiply- (or adder-) accumulates of conv/adder/linear
            layers, 0 for the others.
        params (int): Parameters owned by the module itself.
        calls (int): How many times it ran (a shared ReLU runs twice).
        counted (bool): False when no rule knows the module's class (its
            operations are then 0 and reported in ``uncounted``).
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
        uncounted (list[str]): Classes of leaf modules that ran but have no
            counting rule (their rows are 0).
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


# --------------------------------------------------------------- rules
# A rule maps (module, input, output) to (mults, adds, sign_ops, macs).
Counts = Tuple[int, int, int, int]


def _bias_adds(module: nn.Module, out: torch.Tensor) -> int:
    return out.numel() if getattr(module, 'bias', None) is not None else 0


def _conv_macs(module: nn.modules.conv._ConvNd, inp: torch.Tensor,
               out: torch.Tensor) -> int:
    window = math.prod(module.kernel_size)
    if module.transposed:  # every input element scatters into C_out/g taps
        return inp.numel() * module.out_channels // module.groups * window
    return out.numel() * module.in_channels // module.groups * window


def _adder_rule(module, inp, out) -> Counts:
    macs = _conv_macs(module, inp, out)
    return 0, 2 * macs + _bias_adds(module, out), macs, macs


def _conv_rule(module, inp, out) -> Counts:
    macs = _conv_macs(module, inp, out)
    return macs, macs + _bias_adds(module, out), 0, macs


def _linear_rule(module, inp, out) -> Counts:
    macs = out.numel() * module.in_features
    return macs, macs + _bias_adds(module, out), 0, macs


def _norm_rule(module, inp, out) -> Counts:
    return out.numel(), out.numel(), 0, 0


def _relu_rule(module, inp, out) -> Counts:
    return 0, 0, out.numel(), 0


def _clip_rule(module, inp, out) -> Counts:  # ReLU6, Hardtanh
    return 0, out.numel(), out.numel(), 0


def _window(module: nn.Module, inp: torch.Tensor,
            out: torch.Tensor) -> int:
    """Elements per pooling window (adaptive: input/output ratio)."""
    kernel = getattr(module, 'kernel_size', None)
    if kernel is None:  # adaptive pooling
        return max(inp.numel() // max(out.numel(), 1), 1)
    dims = out.dim() - 2
    kernel = (kernel, ) * dims if isinstance(kernel, int) else kernel
    return math.prod(kernel)


def _max_pool_rule(module, inp, out) -> Counts:
    return 0, out.numel() * (_window(module, inp, out) - 1), 0, 0


def _avg_pool_rule(module, inp, out) -> Counts:
    k = _window(module, inp, out)
    return out.numel(), out.numel() * (k - 1), 0, 0


def _free_rule(module, inp, out) -> Counts:
    return 0, 0, 0, 0


#: (class, rule) in lookup order: Adder2d before Conv2d (its base class).
RULES: List[Tuple[type, Callable]] = [
    (Adder2d, _adder_rule),
    (nn.modules.conv._ConvNd, _conv_rule),
    (nn.Linear, _linear_rule),
    (nn.modules.batchnorm._NormBase, _norm_rule),
    (nn.GroupNorm, _norm_rule),
    (nn.LayerNorm, _norm_rule),
    (nn.ReLU, _relu_rule),
    ((nn.ReLU6, nn.Hardtanh), _clip_rule),
    ((nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d,
      nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d), _max_pool_rule),
    ((nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d,
      nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d), _avg_pool_rule),
    ((nn.Identity, nn.Flatten, nn.modules.dropout._DropoutNd), _free_rule),
]

#: Classes free at inference that live outside torch (matched by name).
FREE_BY_NAME = ('DropPath', )


def find_rule(module: nn.Module) -> Optional[Callable]:
    """Counting rule of a leaf module, or None if its class has none."""
    for cls, rule in RULES:
        if isinstance(module, cls):
            return rule
    if type(module).__name__ in FREE_BY_NAME:
        return _free_rule
    return None


_ADD_FUNCS = {
    torch.add, torch.sub, torch.subtract, torch.Tensor.add,
    torch.Tensor.add_, torch.Tensor.sub, torch.Tensor.sub_,
    torch.Tensor.__add__, torch.Tensor.__radd__, torch.Tensor.__iadd__,
    torch.Tensor.__sub__, torch.Tensor.__rsub__, torch.Tensor.__isub__
}
_MULT_FUNCS = {
    torch.mul, torch.div, torch.Tensor.mul, torch.Tensor.mul_,
    torch.Tensor.div, torch.Tensor.div_, torch.Tensor.__mul__,
    torch.Tensor.__rmul__, torch.Tensor.__imul__, torch.Tensor.__truediv__,
    torch.Tensor.__itruediv__
}
_SIGN_FUNCS = {
    torch.relu, torch.relu_, torch.nn.functional.relu, torch.Tensor.relu,
    torch.Tensor.relu_, torch.abs, torch.Tensor.abs
}


class _ElementwiseCounter(TorchFunctionMode):
    """Counts tensor arithmetic done outside leaf modules."""

    def __init__(self, counter: '_Counter'):
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        counter = self.counter
        if counter.leaf_depth == 0 and counter.stack:
            kind = ('adds' if func in _ADD_FUNCS else
                    'mults' if func in _MULT_FUNCS else
                    'sign_ops' if func in _SIGN_FUNCS else None)
            if kind is not None and isinstance(out, torch.Tensor):
                counter.add_elementwise(counter.stack[-1], kind, out)
        return out


class _Counter:
    """Forward hooks that fill the rows of an :class:`OpsReport`."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.rows: Dict[str, LayerOps] = {}
        self.stack: List[str] = []  # names of the modules now running
        self.leaf_depth = 0
        self.uncounted: List[str] = []
        self.handles = []
        for name, module in model.named_modules():
            if name.startswith('data_preprocessor'):
                continue
            leaf = next(module.children(), None) is None
            self.handles.append(module.register_forward_pre_hook(
                self._pre_hook(name, leaf)))
            self.handles.append(module.register_forward_hook(
                self._post_hook(name, leaf)))

    def _row(self, name: str, op: str) -> LayerOps:
        if name not in self.rows:
            self.rows[name] = LayerOps(name=name, op=op)
        return self.rows[name]

    def add_elementwise(self, parent: str, kind: str,
                        out: torch.Tensor) -> None:
        row = self._row(f'{parent} [elementwise]' if parent else
                        '[elementwise]', 'elementwise')
        setattr(row, kind, getattr(row, kind) + out.numel())
        row.out_shape = tuple(out.shape)
        row.calls += 1

    def _pre_hook(self, name: str, leaf: bool):

        def hook(module, args):
            self.stack.append(name)
            if leaf:
                self.leaf_depth += 1

        return hook

    def _post_hook(self, name: str, leaf: bool):

        def hook(module, args, output):
            self.stack.pop()
            if not leaf:
                return
            self.leaf_depth -= 1
            inp = args[0] if args else None
            out = output[0] if isinstance(output, (tuple, list)) else output
            if not isinstance(out, torch.Tensor):
                return
            row = self._row(name, type(module).__name__)
            row.out_shape = tuple(out.shape)
            row.calls += 1
            rule = find_rule(module)
            if rule is None:
                row.counted = False
                if row.op not in self.uncounted:
                    self.uncounted.append(row.op)
                return
            mults, adds, signs, macs = rule(module, inp, out)
            row.mults += mults
            row.adds += adds
            row.sign_ops += signs
            row.macs += macs

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _run(model: nn.Module, x: torch.Tensor) -> None:
    if 'mode' in inspect.signature(model.forward).parameters:
        model(x, mode='tensor')  # mmpretrain / mmengine models
    else:
        model(x)


@torch.no_grad()
def count_ops(model: nn.Module,
              input_shape: Sequence[int] = (3, 32, 32),
              label: str = 'model') -> OpsReport:
    """Count the operations of one inference of ``model`` on one image.

    The model is run in eval mode on one random image of ``input_shape``
    (training mode is restored afterwards); see :data:`CONVENTION` for what
    is counted. An mmpretrain classifier is called with ``mode='tensor'``
    (backbone, neck and head, no data preprocessor), any other module with
    ``model(x)``.

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
    counter = _Counter(model)
    try:
        with _ElementwiseCounter(counter):
            _run(model, x)
    finally:
        counter.remove()
        model.train(training)

    owned = {
        name: sum(p.numel() for p in module.parameters(recurse=False))
        for name, module in model.named_modules()
    }
    rows = list(counter.rows.values())
    for row in rows:
        row.params = owned.get(row.name, 0)
    total_params = sum(p.numel() for p in model.parameters())
    missing = total_params - sum(row.params for row in rows)
    if missing:
        rows.append(LayerOps(name='(parameters of modules not run / '
                             'not leaves)', op='-', params=missing))
    return OpsReport(label=label, input_shape=tuple(input_shape),
                     layers=rows, total_params=total_params,
                     uncounted=counter.uncounted)


# ------------------------------------------------------------ reporting
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
        ('energy fp32 (uJ)', lambda r: _uj(r.energy_pj('fp32'))),
        ('energy int32 (uJ)', lambda r: _uj(r.energy_pj('int32'))),
    ]
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
    per_model = ('op', 'mult', 'add', 'sign', 'params', 'uJ fp32',
                 'uJ int32')
    header = ['layer', 'output'] + [f'{r.label} {c}' for r in reports
                                    for c in per_model]
    lines.append('| ' + ' | '.join(header) + ' |')
    lines.append('|---|---|' + ('---|' + '---:|' * 6) * len(reports))
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
                _int(row.params), _uj(row.energy_pj('fp32')),
                _uj(row.energy_pj('int32'))
            ]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'
