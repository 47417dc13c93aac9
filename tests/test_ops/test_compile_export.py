"""torch.compile and ONNX export of adder networks.

* ``torch.compile(backbone, fullgraph=True)`` of the adder ResNet-20
  backbone matches eager (forward and gradients); fullgraph makes any graph
  break an error. The test uses the ``aot_eager`` backend (dynamo + AOT
  autograd with the op's fake kernels, the op's real kernels at run time):
  inductor's C++ code generation takes minutes on a 2-core CI machine.
  ``tools/benchmarks/benchmark_compile.py`` runs inductor and reports its
  error beside its speed.
* ``tools/deployment/export_onnx.py`` writes a file that ONNX Runtime runs
  at another batch size with the logits of ``model(x, mode='tensor')``, for
  an ANN, a CNN and the student of a PKKD checkpoint; the custom-domain
  form is run by ONNX's reference evaluator with the float64 reference op as
  the node's kernel. These need onnx, onnxruntime and onnxscript (the
  deploy requirements, part of the tests extra): without them they skip,
  and fail instead when ``MMPKKD_REQUIRE_ONNX`` is set (``.ci/run`` sets
  it). The compile test needs none of them.
"""
import importlib.util
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmpkkd.models.layers import Adder2d as AdderLayer
from mmpkkd.ops import adder2d_reference
from mmpkkd.ops.onnx_export import export_onnx
from mmpkkd.registry import MODELS
from mmpkkd.utils import UserError

from conftest import REPO  # noqa: E402
from tools.deployment import export_onnx as export_tool  # noqa: E402
ANN = osp.join(REPO, 'configs/ann/ann_resnet20_1xb256-400e_cifar10.py')
CNN = osp.join(REPO, 'configs/cnn/cnn_resnet20_1xb256-400e_cifar10.py')
PKKD = osp.join(REPO, 'configs/pkkd/pkkd_resnet20_1xb256-400e_cifar10.py')


def _build(model_cfg, seed=0):
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmpkkd'):
        model = MODELS.build(model_cfg)
    model.init_weights()
    # non-trivial BN statistics and affine (no zero-initialised residual
    # BN), so eval mode is no identity and every weight gets a gradient
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


def _rel_err(a, b):
    assert b.abs().max() > 0, 'a reference that is all zeros proves nothing'
    return ((a - b).abs().max() / b.abs().max()).item()


# ------------------------------------------------------------ compile


def test_compile_adder_resnet20_backbone_fullgraph():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'models',
                 'ann_cifar_resnet20.py'))
    backbone = _build(cfg.model.backbone)
    backbone.train()  # (mmpretrain's ResNet.train returns None)
    assert sum(isinstance(m, AdderLayer) for m in backbone.modules()) == 20
    compiled = torch.compile(backbone, fullgraph=True, backend='aot_eager')
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    results = []
    for model in (backbone, compiled):
        model.zero_grad(set_to_none=True)
        xi = x.clone().requires_grad_()
        (out, ) = model(xi)
        # a loss that weighs every output differently
        out.square().mean().backward()
        results.append((out.detach(), xi.grad,
                        [p.grad for p in backbone.parameters()]))
    (y_e, dx_e, g_e), (y_c, dx_c, g_c) = results
    assert _rel_err(y_c, y_e) <= 1e-4
    assert _rel_err(dx_c, dx_e) <= 1e-3
    assert len(g_c) == len(g_e) == len(list(backbone.parameters()))
    for ge, gc in zip(g_e, g_c):
        assert _rel_err(gc, ge) <= 1e-3


# ------------------------------------------------------------- export

ONNX_MODULES = ('onnx', 'onnxruntime', 'onnxscript')


@pytest.fixture(scope='module')
def onnx_stack():
    """Skip without the ONNX packages, or fail where they are required."""
    missing = [m for m in ONNX_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        reason = (f'{", ".join(missing)} not installed (pip install -r '
                  'requirements/deploy.txt)')
        if os.environ.get('MMPKKD_REQUIRE_ONNX'):
            pytest.fail(f'{reason}; MMPKKD_REQUIRE_ONNX is set')
        pytest.skip(reason)


needs_onnx = pytest.mark.usefixtures('onnx_stack')


def _run_onnx(path, x):
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    (name, ) = [i.name for i in session.get_inputs()]
    return torch.from_numpy(session.run(None, {name: x.numpy()})[0])


def _export_and_compare(tmp_path, config, state_dict, model):
    import onnx
    ckpt = str(tmp_path / 'model.pth')
    torch.save({'state_dict': state_dict, 'meta': {}}, ckpt)
    out = str(tmp_path / 'model.onnx')
    export_tool.main([config, ckpt, '--out', out, '--shape', '2', '3', '16',
                      '16'])
    graph = onnx.load(out)
    onnx.checker.check_model(graph, full_check=True)
    batch = graph.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.dim_value  # dynamic batch
    assert all(n.domain in ('', 'ai.onnx') for n in graph.graph.node)
    x = torch.randn(5, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = model.eval()(x, mode='tensor')
    actual = _run_onnx(out, x)
    assert actual.shape == expected.shape == (5, 10)
    assert _rel_err(actual, expected) <= 1e-3
    return graph


@needs_onnx
def test_export_ann_runs_in_onnxruntime(tmp_path):
    model = _build(Config.fromfile(ANN).model)
    graph = _export_and_compare(tmp_path, ANN, model.state_dict(), model)
    # every adder layer became the standard-operator form (one Abs each)
    assert sum(n.op_type == 'Abs' for n in graph.graph.node) == sum(
        isinstance(m, AdderLayer) for m in model.modules()) == 20


@needs_onnx
def test_export_cnn_runs_in_onnxruntime(tmp_path):
    model = _build(Config.fromfile(CNN).model)
    graph = _export_and_compare(tmp_path, CNN, model.state_dict(), model)
    assert not any(n.op_type == 'Abs' for n in graph.graph.node)


@needs_onnx
def test_export_pkkd_student(tmp_path):
    # a PKKD checkpoint: student.* (the ANN), teacher.* and a connector
    student = _build(Config.fromfile(ANN).model, seed=3)
    teacher = _build(Config.fromfile(CNN).model, seed=4)
    state = {f'student.{k}': v for k, v in student.state_dict().items()}
    state.update(
        {f'teacher.{k}': v for k, v in teacher.state_dict().items()})
    state['connectors.0.conv.weight'] = torch.zeros(64, 64, 1, 1)
    # the PKKD config: its student is built and gets the student.* weights
    # (the ANN config works the same way with such a checkpoint)
    _export_and_compare(tmp_path, PKKD, state, student)


@needs_onnx
def test_export_rejects_mismatched_checkpoint(tmp_path):
    cnn = _build(Config.fromfile(CNN).model)
    ckpt = str(tmp_path / 'cnn.pth')
    torch.save({'state_dict': cnn.state_dict()}, ckpt)
    # CNN and ANN ResNet-20 share key names but the ANN has a BN head
    with pytest.raises(UserError, match='does not fit the model of') as err:
        export_tool.main([ANN, ckpt, '--out', str(tmp_path / 'x.onnx')])
    assert 'head.' in str(err.value)


class _AdderNet(torch.nn.Module):
    """Two adder layers with bias, groups, stride, dilation, (3, 1)."""

    def __init__(self):
        super().__init__()
        self.a = AdderLayer(4, 6, 3, stride=2, padding=1, groups=2,
                            bias=True)
        self.b = AdderLayer(6, 5, (3, 1), padding=(2, 0), dilation=2)

    def forward(self, x):
        return self.b(self.a(x))


@needs_onnx
def test_export_custom_domain_node(tmp_path):
    import onnx
    from onnx.reference import ReferenceEvaluator
    from onnx.reference.op_run import OpRun

    class Adder2d(OpRun):  # a "plugin" (matched by class name): the
        op_domain = 'mmpkkd'  # float64 reference op

        def _run(self, x, w, b=None, strides=None, pads=None,
                 dilations=None, group=None):
            y = adder2d_reference(
                torch.from_numpy(x).double(), torch.from_numpy(w).double(),
                None if b is None else torch.from_numpy(b).double(),
                strides, pads[:2], dilations, group)
            assert pads[:2] == pads[2:]
            return (y.float().numpy(), )

    torch.manual_seed(0)
    model = _AdderNet().eval()
    torch.nn.init.normal_(model.a.bias)
    out = str(tmp_path / 'custom.onnx')
    export_onnx(model, torch.randn(2, 4, 9, 8), out, form='custom')
    graph = onnx.load(out)
    nodes = [n for n in graph.graph.node if n.op_type == 'Adder2d']
    assert [n.domain for n in nodes] == ['mmpkkd', 'mmpkkd']
    assert {(o.domain, o.version) for o in graph.opset_import} >= {
        ('mmpkkd', 1)}
    x = torch.randn(3, 4, 9, 8)
    actual = ReferenceEvaluator(graph, new_ops=[Adder2d]).run(
        None, {'input': x.numpy()})[0]
    with torch.no_grad():
        expected = model(x)
    assert _rel_err(torch.from_numpy(actual), expected) <= 1e-5
    # the standard form of the same model, in ONNX Runtime
    std = str(tmp_path / 'standard.onnx')
    export_onnx(model, torch.randn(2, 4, 9, 8), std)
    assert _rel_err(_run_onnx(std, x), expected) <= 1e-3
