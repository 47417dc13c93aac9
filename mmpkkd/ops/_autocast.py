"""torch.autocast support shared by the native op and the reference.

adder2d is numerically a sum of |x - w| over up to thousands of taps; in
float16/bfloat16 that sum loses most of its precision, so under autocast the
op runs in float32 (like ``torch.amp.custom_fwd(cast_inputs=torch.float32)``,
but for whichever device type the input lives on).
"""
from contextlib import nullcontext
from typing import Optional, Tuple

import torch


def _is_autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except (TypeError, RuntimeError):  # device type without autocast support
        return False


def _to_fp32(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    if t is not None and t.is_floating_point() and t.dtype != torch.float64:
        return t.float()
    return t


def autocast_to_fp32(input: torch.Tensor, weight: torch.Tensor,
                     bias: Optional[torch.Tensor]) -> Tuple:
    """Return ``(input, weight, bias, ctx)`` ready to run in float32.

    Outside autocast the tensors come back unchanged with a null context.
    Inside autocast, floating tensors other than float64 are cast to float32
    (differentiably, so gradients flow back in the caller's dtype) and ``ctx``
    disables autocast for the op itself.
    """
    device_type = input.device.type if isinstance(input,
                                                  torch.Tensor) else 'cpu'
    if not _is_autocast_enabled(device_type):
        return input, weight, bias, nullcontext()
    return (_to_fp32(input), _to_fp32(weight), _to_fp32(bias),
            torch.autocast(device_type=device_type, enabled=False))
