// Python module mmpkkd._ext: the adder2d op (see mmpkkd/ops/adder2d.py).
#include <torch/extension.h>

#include <string>
#include <tuple>

#include "adder2d.h"
#include "adder2d_cpu_kernels.h"

namespace mmpkkd {
at::Tensor adder2d_forward(const at::Tensor& input, const at::Tensor& weight,
                           const c10::optional<at::Tensor>& bias, int64_t sh,
                           int64_t sw, int64_t ph, int64_t pw, int64_t dh,
                           int64_t dw, int64_t groups);
std::tuple<at::Tensor, at::Tensor> adder2d_backward(
    const at::Tensor& grad_out, const at::Tensor& input,
    const at::Tensor& weight, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
    int64_t dh, int64_t dw, int64_t groups, bool need_input,
    bool need_weight);
bool with_cuda();
}  // namespace mmpkkd

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "mmpkkd native ops: adder2d (AdderNet) forward/backward";
  m.def("forward", &mmpkkd::adder2d_forward,
        "adder2d forward: (input, weight, bias|None, sh, sw, ph, pw, dh, dw, "
        "groups) -> output",
        py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("sh"),
        py::arg("sw"), py::arg("ph"), py::arg("pw"), py::arg("dh"),
        py::arg("dw"), py::arg("groups"));
  m.def("backward", &mmpkkd::adder2d_backward,
        "adder2d backward: (grad_out, input, weight, sh, sw, ph, pw, dh, dw, "
        "groups, need_input, need_weight) -> (grad_input|None, "
        "grad_weight|None)",
        py::arg("grad_out"), py::arg("input"), py::arg("weight"),
        py::arg("sh"), py::arg("sw"), py::arg("ph"), py::arg("pw"),
        py::arg("dh"), py::arg("dw"), py::arg("groups"),
        py::arg("need_input"), py::arg("need_weight"));
  m.def("with_cuda", &mmpkkd::with_cuda,
        "whether the CUDA kernels were compiled in");
  m.def("cpu_isa", &mmpkkd::cpu::active_isa,
        "CPU float32 kernel set in use: avx512, avx2 or generic");
  m.def("set_cpu_isa", &mmpkkd::cpu::set_isa, py::arg("name"),
        "force the CPU kernel set (auto, avx512, avx2, generic); returns the "
        "active one");
}
