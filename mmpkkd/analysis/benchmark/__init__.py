"""Helpers of ``tools/benchmarks/benchmark_*.py``: what is measured, how, and
on what.

* :mod:`.layer_shapes`: the adder layers benchmarked (ResNet-20 and
  ResNet-50 shapes);
* :mod:`.timing`: implementations timed with their runs interleaved;
* :mod:`.memory`: CPU and CUDA peak memory, one case per process;
* :mod:`.throughput`: whole-network training throughput of a config;
* :mod:`.environment`: the machine and software a result comes from
  (MMEngine's ``collect_env`` plus the kernel sets), and the results file.
"""
from .environment import environment, save_results
from .layer_shapes import (LayerShape, check_layer_filter, resnet20_shapes,
                           resnet50_shapes, select_shapes)
from .memory import child_case, cuda_peak_growth, peak_rss_growth, run_case
from .throughput import DEFAULT_NETWORKS, make_train_step, measure_throughput
from .timing import CLOCKS, set_up_run, sync, time_round_robin

__all__ = [
    'environment', 'save_results', 'LayerShape', 'check_layer_filter',
    'resnet20_shapes',
    'resnet50_shapes', 'select_shapes', 'child_case', 'cuda_peak_growth',
    'peak_rss_growth', 'run_case', 'DEFAULT_NETWORKS', 'make_train_step',
    'measure_throughput', 'CLOCKS', 'set_up_run', 'sync', 'time_round_robin'
]
