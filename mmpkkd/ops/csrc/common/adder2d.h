// Shared declarations of the adder2d ops: geometry, argument checks and the
// per-device entry points (CPU always, CUDA when MMPKKD_WITH_CUDA is set;
// the int8 ops on the CPU only).
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <optional>
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
                           at::IntArrayRef stride, at::IntArrayRef padding,
                           at::IntArrayRef dilation, int64_t groups);

// The kernels of the dispatcher ops mmpkkd::adder2d and
// mmpkkd::adder2d_backward (schemas in register_ops.cpp), for CPU and CUDA
// tensors. Any memory layout; the outputs are contiguous. The backward
// returns (grad_input, grad_weight); an entry that output_mask does not ask
// for is an empty (0,) tensor.
at::Tensor adder2d_forward(const at::Tensor& input, const at::Tensor& weight,
                           const std::optional<at::Tensor>& bias,
                           at::IntArrayRef stride, at::IntArrayRef padding,
                           at::IntArrayRef dilation, int64_t groups);
std::tuple<at::Tensor, at::Tensor> adder2d_backward(
    const at::Tensor& grad_out, const at::Tensor& input,
    const at::Tensor& weight, at::IntArrayRef stride, at::IntArrayRef padding,
    at::IntArrayRef dilation, int64_t groups, std::array<bool, 2> output_mask);

// Whether the CUDA kernels were compiled in.
bool with_cuda();

// The CPU kernels of the int8 dispatcher ops mmpkkd::adder2d_int8 and
// mmpkkd::adder2d_int8_affine (schemas in register_ops.cpp, driver in
// cpu/adder2d_int8.cpp): -sum |x_pad - w| over int8 operands, exact in
// int32; the affine form quantises a float32 input on the fly and maps the
// sum per channel, alpha[c] * S + beta[c], to float32.
at::Tensor adder2d_int8_cpu(const at::Tensor& input, const at::Tensor& weight,
                            at::IntArrayRef stride, at::IntArrayRef padding,
                            at::IntArrayRef dilation, int64_t groups,
                            int64_t pad_value);
at::Tensor adder2d_int8_affine_cpu(const at::Tensor& input,
                                   const at::Tensor& weight, double inv_scale,
                                   int64_t zero_point, const at::Tensor& alpha,
                                   const at::Tensor& beta,
                                   at::IntArrayRef stride,
                                   at::IntArrayRef padding,
                                   at::IntArrayRef dilation, int64_t groups);

// Device kernels. bias may be an undefined tensor; inputs must be
// contiguous and K > 0.
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
