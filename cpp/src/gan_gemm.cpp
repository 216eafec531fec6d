// The GEMM of the GAN kernel (synthcore/gan.hpp): y = x wt + b on a row block.
//
// Register tiles of 6 (then 1) rows x 32 columns of float32
// accumulators, k in order, compiled per ISA level (dispatch.hpp). Every output
// element is one multiply-add chain over k in the same order whichever tile
// computes it, so rows do not depend on the block size, chunking or threads.
// This file alone is compiled with FMA contraction (CMakeLists.txt): a GEMM
// cannot match NumPy's BLAS bit for bit in any case, and FMA doubles its speed;
// the results agree with the NumPy backend to float32 rounding (docs/gan.md).
// Measured on AVX-512 (64-row blocks, the generator's shapes): weights packed in
// 32-column panels and 6-row tiles reach ~180 GFLOP/s per core against ~110 for
// an unpacked 4-row tile (benchmarks/gan_vs_ctgan.py prints kernel vs NumPy sgemm).
#include <cstddef>

#include "synthcore/dispatch.hpp"
#include "synthcore/gan.hpp"

// The 64-byte vector type is only used inside always-inline helpers of the ISA clones.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace synthcore {
namespace {

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));

SC_ALWAYS_INLINE v16 load16(const float* p) { return *reinterpret_cast<const v16u*>(p); }
SC_ALWAYS_INLINE void store16(float* p, v16 v) { *reinterpret_cast<v16u*>(p) = v; }

// y[r, 0:ld) = sum_k x[r, k] wt[k, 0:ld) + b for m rows; ld % 16 == 0; wt packed
// in panels of 32 columns (panel p holds wt[:, 32p:32p+32] as k rows of 32), the
// last one 16 wide when ld % 32 == 16.
template <int MR>
SC_ALWAYS_INLINE void tile16(const float* x, size_t ldx, size_t k, const float* w, v16 b0,
                             float* y, size_t ld) {
  v16 a[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) a[i] = v16{};
  for (size_t kk = 0; kk < k; ++kk, w += 16) {
    const v16 w0 = load16(w);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) a[i] += x[i * ldx + kk] * w0;
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) store16(y + i * ld, a[i] + b0);
}

template <int MR>
SC_ALWAYS_INLINE void tile(const float* x, size_t ldx, size_t k, const float* w, v16 b0, v16 b1,
                           float* y, size_t ld) {
  v16 a[MR][2];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) a[i][0] = a[i][1] = v16{};
  for (size_t kk = 0; kk < k; ++kk, w += kGanPanel) {
    const v16 w0 = load16(w), w1 = load16(w + 16);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const float s = x[i * ldx + kk];
      a[i][0] += s * w0;
      a[i][1] += s * w1;
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    store16(y + i * ld, a[i][0] + b0);
    store16(y + i * ld + 16, a[i][1] + b1);
  }
}

SC_CLONES void gemm_rows_impl(const float* x, size_t ldx, size_t m, size_t k, const float* wt,
                              const float* b, size_t ld, float* y) {
  size_t j = 0;
  for (; j + kGanPanel <= ld; j += kGanPanel) {
    const v16 b0 = load16(b + j), b1 = load16(b + j + 16);
    const float* panel = wt + j * k;
    size_t r = 0;
    for (; r + 6 <= m; r += 6) tile<6>(x + r * ldx, ldx, k, panel, b0, b1, y + r * ld + j, ld);
    for (; r < m; ++r) tile<1>(x + r * ldx, ldx, k, panel, b0, b1, y + r * ld + j, ld);
  }
  if (j < ld) {  // a 16-column panel
    const v16 b0 = load16(b + j);
    const float* panel = wt + j * k;
    size_t r = 0;
    for (; r + 6 <= m; r += 6) tile16<6>(x + r * ldx, ldx, k, panel, b0, y + r * ld + j, ld);
    for (; r < m; ++r) tile16<1>(x + r * ldx, ldx, k, panel, b0, y + r * ld + j, ld);
  }
}

}  // namespace

void gan_gemm(const float* x, size_t ldx, size_t m, size_t k, const float* wt, const float* b,
              size_t ld, float* y) {
  gemm_rows_impl(x, ldx, m, k, wt, b, ld, y);
}

}  // namespace synthcore
