"""Static checks of the Triton kernels' machine code, with no GPU.

Every configuration the Triton launchers can run is compiled for sm_90
(H100/H200) by Triton's own compiler in a subprocess without
``TRITON_INTERPRET`` (mmpkkd.ops.sass_check), and its SASS is read with the
``cuobjdump`` shipped in the Triton wheel. Asserted per configuration: no
register spills; in the hot loop (the innermost loop with the most FP
instructions) at most 2.5 instructions per MAC for the forward, 3.8 for the
input gradient and 1.7 for the weight gradient; the FP instruction mix of
the configured tile (2 FADD per MAC forward, FFMA.SAT + 2 FFMA dX, 1 FFMA
dW); no global loads in the forward's loop. The previous kernels (one
output strip per thread) measured 5.4-6.0 instructions per MAC forward and
fail this check (test_the_check_rejects_the_previous_forward). The same
kernels are compiled for AMD's gfx942 with Triton's AMD backend (compile
and register count only).
"""
import json
import os.path as osp

import pytest

from mmpkkd.ops.adder2d_triton import shipped_configs, triton_available
from mmpkkd.ops.sass_check import (TARGETS, check_in_subprocess, count_loop,
                                   hot_loop, parse_sass, problems)

pytestmark = pytest.mark.skipif(not triton_available(),
                                reason='needs triton')

_ROWS = {}


def _rows():
    if not _ROWS:
        status, rows = check_in_subprocess(['--targets', 'sm90', 'gfx942'])
        _ROWS['status'], _ROWS['rows'] = status, rows
    return _ROWS['status'], _ROWS['rows']


def test_every_shipped_config_is_checked_on_both_targets():
    _, rows = _rows()
    names = {(p, n) for p, n, _ in shipped_configs()}
    for target in ('sm90', 'gfx942'):
        assert {(r['pass'], r['name']) for r in rows
                if r['target'] == target} == names
    assert {p for p, _ in names} == {'fwd', 'dx', 'dw'}


def test_sm90_configs_meet_the_targets():
    status, rows = _rows()
    bad = {f"{r['target']} {r['pass']} {r['name']}": r['problems']
           for r in rows if r['problems']}
    assert not bad, bad
    assert status == 0
    for r in rows:
        if r['target'] != 'sm90':
            continue
        assert r['local'] == 0 and r['stack'] == 0, r
        if not r['fp64']:
            assert r['instr_per_mac'] <= TARGETS[r['pass']], r
            assert r['fp_mix_ok'], r
            assert r['macs'] > 0 and r['lds'] > 0, r  # staged in smem
        if r['pass'] == 'fwd':
            assert r['ldg'] == 0, r


def test_gfx942_compiles():
    _, rows = _rows()
    amd = [r for r in rows if r['target'] == 'gfx942']
    assert amd and all(0 < r['reg'] <= 512 for r in amd), amd


# the analysis itself, on hand-written SASS


SASS = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0010*/                   FADD R2, R3, R4 ;
        /*0020*/                   LDS.128 R8, [R5] ;
        /*0030*/                   FADD R2, R3, -R4 ;
        /*0040*/                   FADD R6, |R2|, R6 ;
        /*0050*/                   LDG.E R9, desc[UR4][R10.64] ;
        /*0060*/                   FADD R7, |R2|, R7 ;
        /*0070*/               @P0 BRA 0x30 ;
        /*0080*/                   FFMA R1, R2, R3, R4 ;
        /*0090*/               @P1 BRA 0x80 ;
        /*00a0*/                   EXIT ;
"""


def test_hot_loop_is_the_innermost_loop_with_most_fp():
    body = hot_loop(parse_sass(SASS))
    counts = count_loop(body)
    assert [a for a, _, _ in body] == [0x30, 0x40, 0x50, 0x60, 0x70]
    assert counts == dict(FADD=3, LDG=1, BRA=1, total=5)


def test_problems_flag_each_violation():
    row = dict(target='sm90', fp64=False, local=0, stack=8, instr_per_mac=2.6,
               fp_mix_ok=False, spill_ops=2, ldg=3, loop={}, reg=255)
    row['pass'] = 'fwd'
    found = ' | '.join(problems(row))
    for word in ('spills', '2.60 instructions per MAC', 'FP mix',
                 'local loads/stores', 'global loads'):
        assert word in found
    row.update(stack=0, instr_per_mac=2.5, fp_mix_ok=True, spill_ops=0, ldg=0)
    assert problems(row) == []


def test_the_check_rejects_the_previous_forward():
    # one output strip per thread (the kernel before the rewrite)
    path = osp.join(osp.dirname(osp.abspath(__file__)),
                    'strip_layout_kernels.py')
    config = dict(BLOCK_CO=64, BLOCK_P=64, UNROLL=1, HAS_BIAS=True,
                  IS_FP64=False, num_warps=4)
    status, rows = check_in_subprocess(
        ['--kernels', path, '--passes', 'fwd', '--configs',
         json.dumps([['fwd', 'strip 64x64', config]])])
    assert status == 1
    (row, ) = rows
    assert row['instr_per_mac'] > 5 and row['ldg'] > 0
    found = ' | '.join(row['problems'])
    assert 'instructions per MAC' in found and 'global loads' in found
