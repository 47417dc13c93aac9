"""Static checks of the Triton kernels' machine code, without a GPU.

Triton compiles for any target without a driver, and its NVIDIA backend
ships ``ptxas``, ``cuobjdump`` and ``nvdisasm``. This module compiles a
kernel configuration for sm_90 (H100/H200), reads its resource usage
(registers, spills) and finds its hot loop in the SASS: the innermost loop
that holds the most floating-point instructions. It then counts, per trip of
that loop, every instruction, the floating-point ones by opcode, and the
global (``LDG``), shared (``LDS``) and asynchronous-copy (``LDGSTS``) memory
operations. The multiply-accumulates (MACs) per trip follow from the
floating-point mix each pass is written to have (``FP_PER_MAC``), which the
check also compares with the tile the configuration asks for, so a loop that
does not compute what it should is caught, not just a slow one.

For AMD (gfx942) it compiles the same kernels with Triton's AMD backend and
reads the AMDGCN assembly's register, scratch (spill) and LDS counts.

The compile must run in a process where ``TRITON_INTERPRET`` is not set
(with it, ``@triton.jit`` functions are interpreted and cannot be compiled):
:func:`check_in_subprocess` takes care of that. Command line::

    python -m mmpkkd.ops.sass_check          # every shipped configuration
    python -m mmpkkd.ops.sass_check --json   # the same, machine readable
    python -m mmpkkd.ops.sass_check --kernels /tmp/old_triton_kernels.py \\
        --configs '[["fwd", "64x64", {"BLOCK_CO": 64, ..., "num_warps": 4}]]'

Example:
    >>> from mmpkkd.ops.sass_check import check_in_subprocess
    >>> status, rows = check_in_subprocess()   # 1-3 s per configuration
    >>> status, rows[0]['pass'], rows[0]['instr_per_mac'] <= 2.5
    (0, 'fwd', True)
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import re
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ['TARGETS', 'FP_PER_MAC', 'parse_sass', 'hot_loop', 'count_loop',
           'loop_macs', 'compile_config', 'check_config', 'problems',
           'shipped_configs', 'run_checks', 'check_in_subprocess', 'main']

#: per pass, the static targets for the hot loop on sm_90 (instructions per
#: MAC, float32 configurations)
TARGETS = {'fwd': 2.5, 'dx': 3.8, 'dw': 1.7}

#: floating-point instructions per MAC each pass is written to execute:
#: forward FADD (w - x), FADD (|.| as operand modifiers); dX in the
#: saturating form FFMA.SAT, FFMA (2u - 1), FFMA (accumulate); dW FFMA
FP_PER_MAC = {'fwd': 2, 'dx': 3, 'dw': 1}
_FP_OPS = ('FADD', 'FFMA', 'FMUL', 'FMNMX', 'DADD', 'DFMA', 'DMUL',
           'DMNMX', 'FSEL', 'FSETP')


def loop_macs(pass_name: str, counts: Dict[str, int]) -> Tuple[float, int]:
    """(MACs per trip, FP instructions per trip) of a float32 hot loop.

    Forward: FADD / 2. dX: one FFMA.SAT per MAC in the saturating form, or
    (the exact form, FMNMX twice per MAC) FMNMX / 2. dW: FFMA.
    """
    if pass_name == 'fwd':
        fp = counts.get('FADD', 0)
        return fp / 2, fp
    if pass_name == 'dx':
        fp = counts.get('FFMA', 0) + counts.get('FMNMX', 0) + counts.get(
            'FADD', 0) + counts.get('FMUL', 0)
        if counts.get('FFMA.SAT', 0):
            return counts['FFMA.SAT'], fp
        return counts.get('FMNMX', 0) / 2, fp
    fp = counts.get('FFMA', 0)
    return fp, fp


_LINE = re.compile(r'/\*([0-9a-f]{4,})\*/\s+(@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)'
                   r'([^;]*);')


def tool_dir() -> str:
    """Folder of the ``ptxas``/``cuobjdump`` shipped with Triton."""
    import triton
    return osp.join(osp.dirname(triton.__file__), 'backends', 'nvidia',
                    'bin')


def parse_sass(text: str) -> List[Tuple[int, str, str]]:
    """``cuobjdump -sass`` text -> [(address, opcode with modifiers,
    operands)] in address order (one function)."""
    out = []
    for m in _LINE.finditer(text):
        out.append((int(m.group(1), 16), m.group(3), m.group(4).strip()))
    return out


def _loops(instrs) -> List[Tuple[int, int]]:
    """(first, last) indices of each backward branch's loop."""
    index = {addr: i for i, (addr, _, _) in enumerate(instrs)}
    loops = []
    for i, (addr, op, args) in enumerate(instrs):
        if op.split('.')[0] != 'BRA':
            continue
        m = re.match(r'`?\(?0x([0-9a-f]+)', args)
        if m is None:
            continue
        target = int(m.group(1), 16)
        if target < addr and target in index:
            loops.append((index[target], i))
    return loops


def _fp_count(body, opcodes: Sequence[str]) -> int:
    return sum(1 for _, op, _ in body if op.split('.')[0] in opcodes)


def hot_loop(instrs) -> Optional[List[Tuple[int, str, str]]]:
    """The innermost loop holding the most floating-point instructions."""
    loops = _loops(instrs)
    inner = [(a, b) for a, b in loops
             if not any((c, d) != (a, b) and a <= c and d <= b
                        for c, d in loops)]
    if not inner:
        return None
    a, b = max(inner,
               key=lambda ab: _fp_count(instrs[ab[0]:ab[1] + 1], _FP_OPS))
    return instrs[a:b + 1]


def count_loop(body) -> Dict[str, int]:
    """Opcode counts of a loop body (modifiers dropped), plus ``total``
    (NOPs excluded) and ``FFMA.SAT``."""
    counts: Dict[str, int] = {}
    for _, op, _ in body:
        base = op.split('.')[0]
        if base == 'NOP':
            continue
        counts[base] = counts.get(base, 0) + 1
        if op.startswith('FFMA') and '.SAT' in op:
            counts['FFMA.SAT'] = counts.get('FFMA.SAT', 0) + 1
    counts['total'] = sum(v for k, v in counts.items() if k != 'FFMA.SAT')
    return counts


def _signature(fn, constexprs: Dict, ptr_type: str) -> Dict[str, str]:
    sig = {}
    for name in fn.arg_names:
        if name in constexprs:
            sig[name] = 'constexpr'
        elif name.endswith('_ptr'):
            sig[name] = ptr_type
        else:
            sig[name] = 'i32'
    return sig


def compile_config(fn, constexprs: Dict, num_warps: int, num_stages: int,
                   target: str = 'sm90', ptr_type: str = '*fp32'):
    """Compile one configuration of a ``@triton.jit`` kernel without a GPU.

    Args:
        fn: the JIT function (not interpreted: ``TRITON_INTERPRET`` unset).
        constexprs: values of its ``tl.constexpr`` arguments.
        target: ``'sm90'`` or ``'gfx942'``.

    Returns:
        Triton's compiled kernel (``.asm`` holds ``cubin`` or ``amdgcn``).
    """
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    gpu = (GPUTarget('cuda', 90, 32) if target == 'sm90' else
           GPUTarget('hip', target, 64))
    src = ASTSource(fn, _signature(fn, constexprs, ptr_type), constexprs)
    return triton.compile(src, target=gpu,
                          options=dict(num_warps=num_warps,
                                       num_stages=num_stages))


def _resources_sm90(cubin: bytes) -> Tuple[Dict[str, int], str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'k.cubin')
        with open(path, 'wb') as f:
            f.write(cubin)
        tool = osp.join(tool_dir(), 'cuobjdump')
        res = subprocess.run([tool, '-res-usage', path], check=True,
                             capture_output=True, text=True).stdout
        sass = subprocess.run([tool, '-sass', path], check=True,
                              capture_output=True, text=True).stdout
    usage = {k.lower(): int(v) for k, v in re.findall(
        r'\b(REG|STACK|SHARED|LOCAL):(\d+)', res)}
    return usage, sass


def check_config(fn, pass_name: str, constexprs: Dict, num_warps: int,
                 num_stages: int = 3, macs_per_trip: Optional[int] = None,
                 target: str = 'sm90', ptr_type: str = '*fp32') -> Dict:
    """Compile one configuration and measure it.

    Args:
        pass_name: ``'fwd'``, ``'dx'`` or ``'dw'`` (selects the FP mix).
        macs_per_trip: MACs one thread does per trip of the source loop
            (tile size x reduction elements per trip / threads); the hot
            loop's FP instructions must then be a whole multiple of that
            times the pass's FP per MAC (``fp_mix_ok``). None skips it.
        target: ``'sm90'``, or an AMD architecture such as ``'gfx942'``
            (then only resources are read).

    Returns:
        dict: ``reg``, ``local`` and ``stack`` bytes (spills), ``shared``;
        on sm_90 also ``loop`` (opcode counts per trip of the hot loop),
        ``macs`` per trip, ``instr_per_mac``, ``ldg``/``lds``/``ldgsts``/
        ``bar`` per trip, ``spill_ops`` (``LDL``/``STL`` in the loop).
    """
    kernel = compile_config(fn, constexprs, num_warps, num_stages, target,
                            ptr_type)
    row: Dict = dict(target=target)
    if target != 'sm90':
        asm = kernel.asm['amdgcn']

        def meta(key):
            m = re.search(r'\.' + key + r':\s+(\d+)', asm)
            return int(m.group(1)) if m else -1

        row.update(reg=meta('vgpr_count'), sgpr=meta('sgpr_count'),
                   local=meta('private_segment_fixed_size'),
                   spill=meta('vgpr_spill_count') + meta('sgpr_spill_count'),
                   shared=meta('group_segment_fixed_size'))
        return row
    usage, sass = _resources_sm90(kernel.asm['cubin'])
    row.update(usage)
    body = hot_loop(parse_sass(sass))
    if body is None:
        row.update(loop=None, macs=0, instr_per_mac=float('inf'))
        return row
    counts = count_loop(body)
    macs, fp = loop_macs(pass_name, counts)
    row.update(loop=counts, macs=macs,
               instr_per_mac=counts['total'] / macs if macs else float('inf'),
               ldg=counts.get('LDG', 0), lds=counts.get('LDS', 0),
               ldgsts=counts.get('LDGSTS', 0), bar=counts.get('BAR', 0),
               spill_ops=counts.get('LDL', 0) + counts.get('STL', 0))
    if macs_per_trip:
        row['fp_mix_ok'] = (macs > 0 and macs % macs_per_trip == 0
                            and fp == FP_PER_MAC[pass_name] * macs)
    return row


def _kernel_of(module, pass_name: str):
    return getattr(module, {
        'fwd': 'adder2d_fwd_kernel',
        'dx': 'adder2d_grad_input_kernel',
        'dw': 'adder2d_grad_weight_kernel'
    }[pass_name])


def _macs_per_trip(cfg: Dict) -> Optional[int]:
    """MACs per thread per trip of a register-blocked configuration."""
    if 'TM' not in cfg:
        return None
    return cfg['TM'] * cfg['TN'] * cfg['KC'] * cfg['SPLIT']


def problems(row: Dict) -> List[str]:
    """What a measured configuration violates (empty when it passes). On
    sm_90: spills; for float32 also the instructions-per-MAC target of its
    pass, the FP mix, spill traffic and (forward) global loads in the hot
    loop. On AMD targets: only the register count (spills are reported in
    the row, not failed)."""
    out = []
    if row['target'] != 'sm90':
        # AMD: compiled is the check; VGPRs + AGPRs at most 512 per lane.
        # Spills (to AGPRs or scratch) are reported, not failed: the
        # configurations are tuned for sm_90 and were never run on AMD
        if not 0 < row['reg'] <= 512:
            out.append(f"{row['reg']} vector registers (> 512)")
        return out
    if row.get('local', 0) or row.get('stack', 0):
        out.append(f"spills (local {row.get('local')} B, stack "
                   f"{row.get('stack')} B)")
    if row.get('fp64'):
        return out
    limit = TARGETS[row['pass']]
    if not row['instr_per_mac'] <= limit:
        out.append(f"{row['instr_per_mac']:.2f} instructions per MAC in the "
                   f'hot loop > {limit}')
    if row.get('fp_mix_ok') is False:
        out.append(f"hot loop's FP mix is not {FP_PER_MAC[row['pass']]} per "
                   'MAC of the configured tile')
    if row.get('spill_ops'):
        out.append(f"{row['spill_ops']} local loads/stores in the hot loop")
    if row['pass'] == 'fwd' and row.get('ldg'):
        out.append(f"{row['ldg']} global loads (LDG) in the forward's hot "
                   'loop')
    return out


def shipped_configs() -> List[Tuple[str, str, Dict]]:
    """(pass, name, configuration) of every configuration the Triton
    launchers can run (:func:`mmpkkd.ops.adder2d_triton.shipped_configs`)."""
    from mmpkkd.ops.adder2d_triton import shipped_configs as shipped
    return shipped()


def run_checks(configs: Sequence[Tuple[str, str, Dict]], module=None,
               targets: Sequence[str] = ('sm90', )) -> List[Dict]:
    """Compile and measure each (pass, name, config) on each target.

    ``config`` holds the kernel's constexprs plus ``num_warps`` (threads of
    32 lanes; on 64-lane AMD targets the same thread count is used) and
    optionally ``num_stages``. ``module`` holds the kernels (default
    :mod:`mmpkkd.ops.triton_kernels`).
    """
    if module is None:
        from mmpkkd.ops import triton_kernels as module
    rows = []
    for target in targets:
        for pass_name, name, cfg in configs:
            cfg = dict(cfg)
            warps = cfg.pop('num_warps')
            stages = cfg.pop('num_stages', 3)
            fp64 = bool(cfg.get('IS_FP64', False))
            if target != 'sm90':
                warps = max(1, warps // 2)  # 64-lane wavefronts
            row = check_config(_kernel_of(module, pass_name), pass_name, cfg,
                               warps, stages,
                               None if fp64 else _macs_per_trip(cfg),
                               target, '*fp64' if fp64 else '*fp32')
            row.update({'pass': pass_name, 'name': name, 'fp64': fp64})
            row['problems'] = problems(row)
            rows.append(row)
    return rows


def _load_module(path: str):
    spec = importlib.util.spec_from_file_location('_kernels_under_check',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_in_subprocess(args: Sequence[str] = (),
                        timeout: float = 600) -> Tuple[int, List[Dict]]:
    """Run this module's command line in a fresh process without
    ``TRITON_INTERPRET``; returns (exit status, rows)."""
    env = {k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'}
    proc = subprocess.run(
        [sys.executable, '-m', 'mmpkkd.ops.sass_check', '--json', *args],
        env=env, capture_output=True, text=True, timeout=timeout)
    try:
        rows = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise RuntimeError('sass_check produced no result:\n' +
                           proc.stderr[-4000:]) from None
    return proc.returncode, rows


def format_table(rows: Sequence[Dict]) -> str:
    """Markdown table of measured rows."""
    lines = ['| target | pass | config | regs | spill (B) | instr/MAC | '
             'LDG | LDS | LDGSTS | problems |', '|' + '---|' * 10]
    for r in rows:
        ipm = r.get('instr_per_mac')
        lines.append('| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |'
                     .format(r['target'], r['pass'], r['name'], r['reg'],
                             r.get('local', 0) + r.get('stack', 0) if
                             r['target'] == 'sm90' else
                             f"{r.get('local')} (+{r.get('spill')} spilled "
                             'regs)',
                             '-' if ipm is None or r.get('fp64') else
                             f'{ipm:.2f}', r.get('ldg', '-'),
                             r.get('lds', '-'), r.get('ldgsts', '-'),
                             '; '.join(r['problems']) or 'ok'))
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description='Compile the Triton adder2d kernels for sm_90 (and AMD '
        'targets) without a GPU and check their machine code: spills, '
        'instructions per MAC in the hot loop, global loads in the '
        "forward's loop. Exit status 1 when a configuration fails.")
    parser.add_argument('--json', action='store_true',
                        help='print the rows as JSON')
    parser.add_argument('--kernels', help='a file with the three kernels '
                        '(default: mmpkkd/ops/triton_kernels.py)')
    parser.add_argument('--configs', help='JSON list of [pass, name, '
                        'config] (default: the shipped configurations)')
    parser.add_argument('--passes', nargs='+', default=('fwd', 'dx', 'dw'),
                        choices=('fwd', 'dx', 'dw'))
    parser.add_argument('--targets', nargs='+', default=('sm90', ),
                        help="'sm90' and/or AMD architectures, e.g. gfx942")
    args = parser.parse_args(argv)
    if os.environ.get('TRITON_INTERPRET', '0') == '1':
        parser.error('TRITON_INTERPRET=1 is set: kernels cannot be compiled '
                     'under the interpreter; unset it (check_in_subprocess '
                     'does)')
    module = _load_module(args.kernels) if args.kernels else None
    configs = (json.loads(args.configs) if args.configs else
               shipped_configs())
    configs = [c for c in configs if c[0] in args.passes]
    rows = run_checks(configs, module, args.targets)
    if args.json:
        print(json.dumps(rows))
    else:
        print(format_table(rows))
    return 1 if any(r['problems'] for r in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
