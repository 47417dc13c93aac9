// Registers adder2d with PyTorch's dispatcher: torch.ops.mmpkkd.adder2d and
// torch.ops.mmpkkd.adder2d_backward with the CPU kernels, and
// torch.ops.mmpkkd.adder2d_cuda / adder2d_cuda_backward (same schemas) with
// the CUDA C++ kernels when built. The CUDA kernel of adder2d itself is
// registered from Python (mmpkkd/ops/_library.py): it runs the Triton
// kernels or these CUDA C++ ones, whichever backend is selected.
//
// The fake (meta) implementations, the autograd formula and the autocast
// rule are registered from Python (mmpkkd/ops/_library.py), which also
// defines these same schemas when this extension is not built. A FRAGMENT,
// so other files may add ops to the mmpkkd namespace.
#include <torch/library.h>

#include "adder2d.h"

TORCH_LIBRARY_FRAGMENT(mmpkkd, m) {
  // keep in sync with ADDER2D_SCHEMA / ADDER2D_BACKWARD_SCHEMA in
  // mmpkkd/ops/_library.py (a test compares them)
  m.def(
      "adder2d(Tensor input, Tensor weight, Tensor? bias, int[2] stride, "
      "int[2] padding, int[2] dilation, int groups) -> Tensor");
  m.def(
      "adder2d_backward(Tensor grad_output, Tensor input, Tensor weight, "
      "int[2] stride, int[2] padding, int[2] dilation, int groups, "
      "bool[2] output_mask) -> (Tensor, Tensor)");
  m.def(
      "adder2d_cuda(Tensor input, Tensor weight, Tensor? bias, "
      "int[2] stride, int[2] padding, int[2] dilation, int groups) -> Tensor");
  m.def(
      "adder2d_cuda_backward(Tensor grad_output, Tensor input, "
      "Tensor weight, int[2] stride, int[2] padding, int[2] dilation, "
      "int groups, bool[2] output_mask) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(mmpkkd, CPU, m) {
  m.impl("adder2d", &mmpkkd::adder2d_forward);
  m.impl("adder2d_backward", &mmpkkd::adder2d_backward);
}

#ifdef MMPKKD_WITH_CUDA
TORCH_LIBRARY_IMPL(mmpkkd, CUDA, m) {
  m.impl("adder2d_cuda", &mmpkkd::adder2d_forward);
  m.impl("adder2d_cuda_backward", &mmpkkd::adder2d_backward);
}
#endif
