// Python module mmpkkd._ext. Importing it registers the dispatcher ops
// torch.ops.mmpkkd.* (register_ops.cpp), the CPU kernel-set switches
// included; the module itself only reports how it was built.
#include <torch/extension.h>

#include "adder2d.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() =
      "mmpkkd native ops; the kernels are torch.ops.mmpkkd.adder2d, "
      "adder2d_backward, adder2d_int8 and adder2d_int8_affine";
  m.def("with_cuda", &mmpkkd::with_cuda,
        "whether the CUDA kernels were compiled in");
}
