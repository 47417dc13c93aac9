// Python module mmpkkd._ext. Importing it registers the dispatcher ops
// torch.ops.mmpkkd.* (register_ops.cpp); the module itself only exposes
// build facts and the CPU kernel-set switch.
#include <torch/extension.h>

#include "adder2d.h"
#include "adder2d_cpu_kernels.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() =
      "mmpkkd native ops; the adder2d kernels are torch.ops.mmpkkd.adder2d "
      "and torch.ops.mmpkkd.adder2d_backward";
  m.def("with_cuda", &mmpkkd::with_cuda,
        "whether the CUDA kernels were compiled in");
  m.def("cpu_isa", &mmpkkd::cpu::active_isa,
        "CPU float32 kernel set in use: avx512, avx2 or generic");
  m.def("set_cpu_isa", &mmpkkd::cpu::set_isa, py::arg("name"),
        "force the CPU kernel set (auto, avx512, avx2, generic); returns the "
        "active one");
}
