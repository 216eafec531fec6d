// Fused CTGAN / TVAE generator inference (python/synthcore/gan.py, docs/gan.md).
//
// One row block at a time: Philox z into the tail of an activation buffer of
// width S, each layer a GEMM that reads a contiguous column range of that
// buffer (CTGAN's residual concat is a suffix: no copies) plus the weight row of
// the row's condition index (the one-hot is never built), bias, BatchNorm
// (folded in eval mode; batch statistics of the block in compat mode), ReLU,
// written just before its input. The output layer's pre-activations never
// leave the block: tanh, argmax(logit + Gumbel) over each span and the mode
// denormalisation write typed columns directly.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "synthcore/hd.hpp"
#include "synthcore/rng/philox.hpp"

namespace synthcore {

// Column decode kinds (python/synthcore/_reference/gan.py).
enum GanColumnKind : int32_t { kGanContF64 = 0, kGanContI64 = 1, kGanDiscrete = 2 };

// Philox streams (the same numbers as the reference).
constexpr uint64_t kGanStreamZ = 0x67616E00, kGanStreamCond = 0x67616E01,
                   kGanStreamGumbel = 0x67616E02, kGanStreamAlphaNoise = 0x67616E03;

// Gumbel(0, 1) noise from one Philox word: u = ((w >> 8) + 1/2) 2^-24 in (0, 1).
SC_HD double gan_u01_open(uint32_t w) {
  return (static_cast<double>(w >> 8) + 0.5) * 0x1p-24;
}

struct GanLayer {
  int in_off, in_w;     // input: buffer columns [in_off, in_off + in_w)
  int out_off, out_w;   // output: buffer columns [out_off, out_off + out_w) (hidden layers)
  int ld;               // row stride of wt and wc: out_w rounded up to a multiple of 16
  const float* wt;      // in_w x ld transposed Linear weight, zero padded, packed in panels
                        // of 32 columns (panel p: in_w rows of 32 floats), the last one
                        // 16 wide when ld % 32 == 16
  const float* b;       // ld
  const float* wc;      // C x ld: weight rows of the condition one-hot (nullptr: none)
  bool batch_norm;      // compat mode: normalise by the block's batch statistics
  const float* gamma;   // out_w (batch_norm)
  const float* beta;    // out_w (batch_norm)
  double eps;
};

struct GanColumn {
  int32_t kind;   // GanColumnKind
  int32_t at;     // first output position (alpha for continuous, the span for discrete)
  int32_t width;  // modes (continuous) or categories (discrete)
  int32_t mode_off;  // continuous: first mode in means / stds
  void* out;      // double*, int64_t* or int32_t*, n values
};

struct GanPlan {
  int E = 0, C = 0, D = 0, S = 0;
  std::vector<GanLayer> hidden;
  GanLayer final_layer{};
  std::vector<GanColumn> columns;
  const double* cond_cum = nullptr;  // C cumulative condition probabilities
  const double* means = nullptr;
  const double* stds = nullptr;
  const float* sigma = nullptr;      // TVAE: alpha noise scale per output position
  bool tvae = false;
};

constexpr int kGanPanel = 32;  // GEMM output columns per register tile

// Rows [row_begin, row_begin + n) into the columns' out buffers (offset 0 = row_begin).
// block_rows: rows per block; in compat mode each block is one BatchNorm batch
// (n must then be a multiple of block_rows). cond_fixed >= 0: every row's
// condition index; -1: drawn per row from cond_cum. Output does not depend on
// num_threads, and in eval mode not on block_rows either.
void gan_sample(const GanPlan& plan, rng::PhiloxKey key, uint64_t row_begin, size_t n,
                size_t block_rows, bool compat, int cond_fixed, int num_threads);

// y (m x ld) = x (m rows of stride ldx, k columns) * wt (k x ld, packed as in GanLayer) + b:
// the GEMM
// the kernel uses, exposed for tests and the benchmark of kernel vs BLAS.
void gan_gemm(const float* x, size_t ldx, size_t m, size_t k, const float* wt, const float* b,
              size_t ld, float* y);

}  // namespace synthcore
