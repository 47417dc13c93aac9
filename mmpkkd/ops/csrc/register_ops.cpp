// Registers the native ops with PyTorch's dispatcher (torch.ops.mmpkkd):
//
//   adder2d, adder2d_backward          float op, CPU kernels here; the CUDA
//                                      kernel is registered from Python
//                                      (mmpkkd/ops/cuda_backend.py): Triton
//                                      or the CUDA C++ kernels below
//   adder2d_cuda, adder2d_cuda_backward  the CUDA C++ kernels (when built)
//   adder2d_int8, adder2d_int8_affine  int8 op, CPU only
//   <op>_cpu_isa, <op>_supported_cpu_isas  the CPU kernel set of each of
//                                      adder2d and adder2d_int8 (one switch
//                                      mechanism for both)
//
// The fake (meta) implementations, the autograd formula and the autocast
// rule are registered from Python (mmpkkd/ops/_library.py), which also
// defines these same schemas, with pure-PyTorch kernels, when this
// extension is not built. A FRAGMENT, so other files may add ops to the
// mmpkkd namespace.
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "adder2d.h"
#include "adder2d_cpu_kernels.h"
#include "adder2d_int8.h"

namespace mmpkkd {
namespace {

// "" reads the kernel set in use, a name sets it ("auto": the best one).
std::string adder2d_cpu_isa(const std::string& name) {
  if (name.empty()) return cpu::active_isa();
  try {
    return cpu::set_isa(name);
  } catch (const std::invalid_argument& err) {
    C10_THROW_ERROR(ValueError, err.what());  // Python: ValueError
  }
}

std::string adder2d_int8_cpu_isa(const std::string& name) {
  return name.empty() ? cpu::int8_active_isa() : cpu::int8_set_isa(name);
}

}  // namespace
}  // namespace mmpkkd

TORCH_LIBRARY_FRAGMENT(mmpkkd, m) {
  // keep in sync with the *_SCHEMA strings of mmpkkd/ops/_library.py (a
  // test compares them)
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
  m.def(
      "adder2d_int8(Tensor input, Tensor weight, int[2] stride=1, "
      "int[2] padding=0, int[2] dilation=1, int groups=1, int pad_value=0) "
      "-> Tensor");
  m.def(
      "adder2d_int8_affine(Tensor input, Tensor weight, float inv_scale, "
      "int zero_point, Tensor alpha, Tensor beta, int[2] stride=1, "
      "int[2] padding=0, int[2] dilation=1, int groups=1) -> Tensor");
  // CPU kernel sets (no tensors: catch-all kernels)
  m.def("adder2d_cpu_isa(str name='') -> str", &mmpkkd::adder2d_cpu_isa);
  m.def("adder2d_supported_cpu_isas() -> str[]",
        &mmpkkd::cpu::supported_isas);
  m.def("adder2d_int8_cpu_isa(str name='') -> str",
        &mmpkkd::adder2d_int8_cpu_isa);
  m.def("adder2d_int8_supported_cpu_isas() -> str[]",
        &mmpkkd::cpu::int8_supported_isas);
}

TORCH_LIBRARY_IMPL(mmpkkd, CPU, m) {
  m.impl("adder2d", &mmpkkd::adder2d_forward);
  m.impl("adder2d_backward", &mmpkkd::adder2d_backward);
  m.impl("adder2d_int8", &mmpkkd::adder2d_int8_cpu);
  m.impl("adder2d_int8_affine", &mmpkkd::adder2d_int8_affine_cpu);
}

#ifdef MMPKKD_WITH_CUDA
TORCH_LIBRARY_IMPL(mmpkkd, CUDA, m) {
  m.impl("adder2d_cuda", &mmpkkd::adder2d_forward);
  m.impl("adder2d_cuda_backward", &mmpkkd::adder2d_backward);
}
#endif
