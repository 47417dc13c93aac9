// Argument checks and device dispatch of the adder2d op (the kernels behind
// torch.ops.mmpkkd.adder2d / adder2d_backward, see register_ops.cpp).
#include "adder2d.h"

#include <c10/util/Exception.h>

#include <array>
#include <optional>
#include <tuple>

namespace mmpkkd {

Adder2dShape adder2d_shape(const at::Tensor& input, const at::Tensor& weight,
                           at::IntArrayRef stride, at::IntArrayRef padding,
                           at::IntArrayRef dilation, int64_t groups) {
  TORCH_CHECK_VALUE(input.dim() == 4,
                    "adder2d: input must be 4-D (N, C_in, H, W), got ",
                    input.sizes());
  TORCH_CHECK_VALUE(weight.dim() == 4,
                    "adder2d: weight must be 4-D (C_out, C_in/groups, kH, "
                    "kW), got ",
                    weight.sizes());
  TORCH_CHECK_VALUE(stride.size() == 2 && padding.size() == 2 &&
                        dilation.size() == 2,
                    "adder2d: stride, padding and dilation must be (h, w) "
                    "pairs");
  const int64_t sh = stride[0], sw = stride[1], ph = padding[0],
                pw = padding[1], dh = dilation[0], dw = dilation[1];
  TORCH_CHECK_VALUE(sh >= 1 && sw >= 1 && dh >= 1 && dw >= 1 && ph >= 0 &&
                        pw >= 0,
                    "adder2d: stride and dilation must be >= 1 and padding "
                    ">= 0");
  TORCH_CHECK_VALUE(groups >= 1, "adder2d: groups must be >= 1");
  TORCH_CHECK_VALUE(input.device() == weight.device(),
                    "adder2d: input and weight must be on the same device");
  TORCH_CHECK_VALUE(input.scalar_type() == weight.scalar_type(),
                    "adder2d: input and weight must have the same dtype");
  TORCH_CHECK_VALUE(input.scalar_type() == at::kFloat ||
                        input.scalar_type() == at::kDouble,
                    "adder2d: only float32 and float64 are supported, got ",
                    input.scalar_type());
  Adder2dShape s;
  s.N = input.size(0);
  s.C = input.size(1);
  s.H = input.size(2);
  s.W = input.size(3);
  s.COUT = weight.size(0);
  s.KH = weight.size(2);
  s.KW = weight.size(3);
  s.SH = sh;
  s.SW = sw;
  s.PH = ph;
  s.PW = pw;
  s.DH = dh;
  s.DW = dw;
  s.G = groups;
  TORCH_CHECK_VALUE(s.C % groups == 0 && s.COUT % groups == 0,
                    "adder2d: groups must divide C_in and C_out");
  s.CPG = s.C / groups;
  s.COG = s.COUT / groups;
  TORCH_CHECK_VALUE(weight.size(1) == s.CPG,
                    "adder2d: weight.shape[1] must be C_in/groups = ", s.CPG,
                    ", got ", weight.size(1));
  TORCH_CHECK_VALUE(s.KH >= 1 && s.KW >= 1 && s.COUT >= 1,
                    "adder2d: empty weight");
  s.HO = (s.H + 2 * ph - dh * (s.KH - 1) - 1) / sh + 1;
  s.WO = (s.W + 2 * pw - dw * (s.KW - 1) - 1) / sw + 1;
  TORCH_CHECK_VALUE(s.H + 2 * ph - dh * (s.KH - 1) - 1 >= 0 &&
                        s.W + 2 * pw - dw * (s.KW - 1) - 1 >= 0,
                    "adder2d: input too small for the kernel");
  s.K = s.CPG * s.KH * s.KW;
  s.P = s.HO * s.WO;
  return s;
}

namespace {

// K = 0 (no input channels): every output and gradient is an empty sum.
bool reduces_nothing(const Adder2dShape& s) { return s.K == 0; }

}  // namespace

at::Tensor adder2d_forward(const at::Tensor& input, const at::Tensor& weight,
                           const std::optional<at::Tensor>& bias,
                           at::IntArrayRef stride, at::IntArrayRef padding,
                           at::IntArrayRef dilation, int64_t groups) {
  const Adder2dShape s =
      adder2d_shape(input, weight, stride, padding, dilation, groups);
  at::Tensor b;
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == s.COUT,
                      "adder2d: bias must have shape (C_out,)");
    TORCH_CHECK_VALUE(bias->device() == input.device() &&
                          bias->scalar_type() == input.scalar_type(),
                      "adder2d: bias must match the input's device and dtype");
    b = bias->contiguous();
  }
  if (reduces_nothing(s)) {
    // no input channels: every output is an empty sum, i.e. 0 (+ bias)
    at::Tensor out = at::zeros({s.N, s.COUT, s.HO, s.WO}, input.options());
    if (b.defined()) out.add_(b.view({1, s.COUT, 1, 1}));
    return out;
  }
  const at::Tensor x = input.contiguous(), w = weight.contiguous();
  if (x.is_cuda()) {
#ifdef MMPKKD_WITH_CUDA
    return adder2d_forward_cuda(x, w, b, s);
#else
    TORCH_CHECK(false, "adder2d: mmpkkd._ext was built without CUDA");
#endif
  }
  TORCH_CHECK(x.is_cpu(), "adder2d: unsupported device ", x.device());
  return adder2d_forward_cpu(x, w, b, s);
}

std::tuple<at::Tensor, at::Tensor> adder2d_backward(
    const at::Tensor& grad_out, const at::Tensor& input,
    const at::Tensor& weight, at::IntArrayRef stride, at::IntArrayRef padding,
    at::IntArrayRef dilation, int64_t groups,
    std::array<bool, 2> output_mask) {
  const Adder2dShape s =
      adder2d_shape(input, weight, stride, padding, dilation, groups);
  TORCH_CHECK_VALUE(grad_out.dim() == 4 && grad_out.size(0) == s.N &&
                        grad_out.size(1) == s.COUT &&
                        grad_out.size(2) == s.HO && grad_out.size(3) == s.WO,
                    "adder2d: grad_output has shape ", grad_out.sizes(),
                    ", expected (", s.N, ", ", s.COUT, ", ", s.HO, ", ", s.WO,
                    ")");
  TORCH_CHECK_VALUE(grad_out.device() == input.device(),
                    "adder2d: grad_output is on another device");
  const bool need_input = output_mask[0], need_weight = output_mask[1];
  // A gradient that was not asked for comes back as an empty (0,) tensor
  // (the op's outputs are always tensors; the autograd formula drops them).
  at::Tensor grad_x, grad_w;
  if (reduces_nothing(s) || grad_out.numel() == 0) {
    // empty sums: zero gradients of the right shapes, no kernel launched
    if (need_input) grad_x = at::zeros(input.sizes(), input.options());
    if (need_weight) grad_w = at::zeros(weight.sizes(), weight.options());
  } else if (need_input || need_weight) {
    const at::Tensor gy = grad_out.to(input.scalar_type()).contiguous();
    const at::Tensor x = input.contiguous(), w = weight.contiguous();
    if (x.is_cuda()) {
#ifdef MMPKKD_WITH_CUDA
      std::tie(grad_x, grad_w) =
          adder2d_backward_cuda(gy, x, w, s, need_input, need_weight);
#else
      TORCH_CHECK(false, "adder2d: mmpkkd._ext was built without CUDA");
#endif
    } else {
      TORCH_CHECK(x.is_cpu(), "adder2d: unsupported device ", x.device());
      std::tie(grad_x, grad_w) =
          adder2d_backward_cpu(gy, x, w, s, need_input, need_weight);
    }
  }
  if (!grad_x.defined()) grad_x = at::empty({0}, input.options());
  if (!grad_w.defined()) grad_w = at::empty({0}, weight.options());
  return std::make_tuple(grad_x, grad_w);
}

bool with_cuda() {
#ifdef MMPKKD_WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace mmpkkd
