// The GEMM of the GAN kernel (synthcore/gan.hpp): y = x wt + b on a row block.
//
// Register tiles of 4 (then 1) rows x 32 columns of float32
// accumulators, k in order, compiled per ISA level (dispatch.hpp). Every output
// element is one multiply-add chain over k in the same order whichever tile
// computes it, so rows do not depend on the block size, chunking or threads.
// This file alone is compiled with FMA contraction (CMakeLists.txt): a GEMM
// cannot match NumPy's BLAS bit for bit in any case, and FMA doubles its speed;
// the results agree with the NumPy backend to float32 rounding (docs/gan.md).
// (An 8-row tile measured ~20% slower on AVX-512: benchmarks/gan_vs_ctgan.py.)
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

// y[r, 0:ld) = sum_k x[r, k] wt[k, 0:ld) + b for m rows; ld % 32 == 0.
SC_CLONES void gemm_rows_impl(const float* x, size_t ldx, size_t m, size_t k, const float* wt,
                         const float* b, size_t ld, float* y) {
  for (size_t j = 0; j < ld; j += kGanPanel) {
    const v16 b0 = load16(b + j), b1 = load16(b + j + 16);
    size_t r = 0;
    for (; r + 4 <= m; r += 4) {
      const float* x0 = x + r * ldx;
      const float* x1 = x0 + ldx;
      const float* x2 = x1 + ldx;
      const float* x3 = x2 + ldx;
      v16 a00 = {}, a01 = {}, a10 = {}, a11 = {}, a20 = {}, a21 = {}, a30 = {}, a31 = {};
      const float* w = wt + j;
      for (size_t kk = 0; kk < k; ++kk, w += ld) {
        const v16 w0 = load16(w), w1 = load16(w + 16);
        const float s0 = x0[kk], s1 = x1[kk], s2 = x2[kk], s3 = x3[kk];
        a00 += s0 * w0; a01 += s0 * w1;
        a10 += s1 * w0; a11 += s1 * w1;
        a20 += s2 * w0; a21 += s2 * w1;
        a30 += s3 * w0; a31 += s3 * w1;
      }
      float* yr = y + r * ld + j;
      store16(yr, a00 + b0); store16(yr + 16, a01 + b1);
      store16(yr + ld, a10 + b0); store16(yr + ld + 16, a11 + b1);
      store16(yr + 2 * ld, a20 + b0); store16(yr + 2 * ld + 16, a21 + b1);
      store16(yr + 3 * ld, a30 + b0); store16(yr + 3 * ld + 16, a31 + b1);
    }
    for (; r < m; ++r) {  // the same chain per element as in the 4-row tile
      const float* x0 = x + r * ldx;
      v16 a00 = {}, a01 = {};
      const float* w = wt + j;
      for (size_t kk = 0; kk < k; ++kk, w += ld) {
        const float s0 = x0[kk];
        a00 += s0 * load16(w);
        a01 += s0 * load16(w + 16);
      }
      store16(y + r * ld + j, a00 + b0);
      store16(y + r * ld + j + 16, a01 + b1);
    }
  }
}

}  // namespace

void gan_gemm(const float* x, size_t ldx, size_t m, size_t k, const float* wt, const float* b,
              size_t ld, float* y) {
  gemm_rows_impl(x, ldx, m, k, wt, b, ld, y);
}

}  // namespace synthcore
