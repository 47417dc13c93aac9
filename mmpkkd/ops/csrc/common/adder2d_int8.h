// Int8 adder2d on the CPU: -sum |x - w| over int8 operands, exact in int32.
//
// Data layout shared by the driver (cpu/adder2d_int8.cpp) and the
// microkernels (cpu/adder2d_int8_kernels.cpp):
//   * operands are stored as uint8 = int8 ^ 0x80 (x + 128), so that the
//     unsigned byte SAD instruction (vpsadbw) applies: |x - w| is invariant
//     to adding 128 to both;
//   * the input is one zero-padded NHWC image per batch entry, each group's
//     channels rounded up to CPGp = round_up(C_in / groups, 8) bytes (the
//     extra channels hold 0x80 in input and weights alike, adding 0);
//   * the reduction runs over taps t = (kh, kw) and 8-byte channel chunks
//     q < NQ = CPGp / 8: output position i reads x[i] + off[t] + 8q, where
//     x[i] is the position's top-left input pixel and off[t] the tap's
//     offset (implicit GEMM: no im2col copy);
//   * weights are packed per block of NR output channels as
//     W[((t * NQ + q) * NR + r) * 8 + b], 8 bytes per channel and chunk.
// A psadbw lane then holds one output (position i, channel r): the 8 weight
// bytes of channel r in lane r against 8 input bytes broadcast to all lanes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mmpkkd {
namespace cpu {

struct AdderInt8Kernels {
  const char* isa;
  int mr;  // output positions per register block (broadcast operand)
  int nr;  // output channels per register block (vector lanes)
  // C[i * NR + r] (+)= sum_{t < taps} sum_{q < nq} sum_{b < 8}
  //     |x[i][off[t] + 8q + b] - w[((t * nq + q) * NR + r) * 8 + b]|
  // for i < MR, r < NR (added to C when accumulate).
  void (*fwd)(int64_t taps, int64_t nq, const int64_t* off,
              const uint8_t* const* x, const uint8_t* w, int64_t* c,
              bool accumulate);
};

// The int8 kernel set in use (best supported ISA unless forced).
const AdderInt8Kernels& int8_kernels();
// Name of the int8 kernel set in use: "avx512", "avx2" or "generic".
std::string int8_active_isa();
// Force a kernel set ("avx512", "avx2", "generic") or go back to the best
// supported one ("auto"). Raises ValueError if the CPU lacks the ISA.
// Returns the active name. Also read once from env MMPKKD_INT8_CPU_ISA.
std::string int8_set_isa(const std::string& name);
// Kernel sets this CPU can run, best first (always ends with "generic").
std::vector<std::string> int8_supported_isas();

}  // namespace cpu
}  // namespace mmpkkd
