// Shared declarations of the adder2d op: geometry, argument checks and the
// per-device entry points (CPU always, CUDA when MMPKKD_WITH_CUDA is set).
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace mmpkkd {

// Sizes of one adder2d call. K = CPG*KH*KW (reduction length per output),
// P = HO*WO (output positions per image), CPG/COG = channels per group.
struct Adder2dShape {
  int64_t N, C, H, W;
  int64_t COUT, KH, KW;
  int64_t SH, SW, PH, PW, DH, DW;
  int64_t G, CPG, COG;
  int64_t HO, WO, K, P;
};

// Validates the tensors and hyper-parameters (raises ValueError via
// TORCH_CHECK_VALUE) and returns the geometry.
Adder2dShape adder2d_shape(const at::Tensor& input, const at::Tensor& weight,
                           int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                           int64_t dh, int64_t dw, int64_t groups);

// bias may be an undefined tensor. Inputs must be contiguous.
at::Tensor adder2d_forward_cpu(const at::Tensor& input,
                               const at::Tensor& weight,
                               const at::Tensor& bias, const Adder2dShape& s);
// Returns (grad_input, grad_weight); an entry is undefined when not needed.
std::tuple<at::Tensor, at::Tensor> adder2d_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& input,
    const at::Tensor& weight, const Adder2dShape& s, bool need_input,
    bool need_weight);

#ifdef MMPKKD_WITH_CUDA
at::Tensor adder2d_forward_cuda(const at::Tensor& input,
                                const at::Tensor& weight,
                                const at::Tensor& bias, const Adder2dShape& s);
std::tuple<at::Tensor, at::Tensor> adder2d_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& input,
    const at::Tensor& weight, const Adder2dShape& s, bool need_input,
    bool need_weight);
#endif

}  // namespace mmpkkd
