"""The benchmark scripts run end to end (numbers are not asserted: timing
belongs in the scripts' reports, not in tests)."""
import json
import os
import os.path as osp
import subprocess
import sys

from conftest import REPO, tool_path  # noqa: E402


def run(script, *args):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, tool_path(script)), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def test_layer_benchmark(tmp_path):
    out = str(tmp_path / 'bench.json')
    run('benchmark_adder.py', '--shapes', 'resnet20', '--layers',
        'r20.s3.down1x1', '--batch-resnet20', '4', '--repeat', '1',
        '--warmup', '0', '--orig-repeat', '1', '--threads', '1', '--json',
        out)
    result = json.load(open(out))
    (layer, ) = result['layers']
    assert set(layer['results']) == {'ours', 'conv', 'original'}
    for impl in layer['results'].values():
        assert impl['fwd']['time_ms'] > 0 and impl['fwdbwd']['time_ms'] > 0
        assert impl['fwd']['peak_bytes'] is not None


def test_network_benchmark(tmp_path):
    out = str(tmp_path / 'bench_net.json')
    stdout = run('benchmark_network.py', '--batch', '2', '--repeat', '1',
                 '--threads', '1', '--json', out)
    result = json.load(open(out))
    nets = {r['network']: r for r in result['networks']}
    assert set(nets) == {'CNN', 'ANN', 'PKKD'}
    for r in nets.values():
        assert r['images_per_s'] > 0 and r['peak_mem_mb'] is not None
    assert 'Whole-network training throughput' in stdout
    # the environment is MMEngine's collect_env plus the kernel sets
    env = result['meta']
    assert {'Python', 'PyTorch', 'MMEngine', 'mmpkkd', 'threads',
            'command'} <= set(env) and env['threads'] == 1


def test_environment_is_collect_env_plus_what_sets_our_speed():
    import torch
    from mmengine.utils.dl_utils import collect_env

    from mmpkkd.analysis.benchmark import environment
    from mmpkkd.ops import cpu_isas_available, native_available
    env = environment('cpu', __file__, timer='cpu')
    json.dumps(env)  # plain data
    reference = collect_env()
    assert env['PyTorch'] == reference['PyTorch'] == torch.__version__
    assert env['MMEngine'] == reference['MMEngine']
    assert env['threads'] == torch.get_num_threads()
    assert env['timer'] == 'cpu'
    assert env['command'].startswith(osp.relpath(__file__))
    if native_available():
        assert set(env['cpu_isa']) == {'adder2d', 'adder2d_int8'}
        for op, isa in env['cpu_isa'].items():
            assert isa == cpu_isas_available(op)[0]  # the best, by default
