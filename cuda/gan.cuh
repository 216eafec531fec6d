// CUDA launchers for CTGAN / TVAE inference (synthcore/gan.hpp). The GEMMs run
// in cuBLAS (called from Python through CuPy, on the same stream, reading the
// activation buffer in place with ldb = S); these kernels do everything around
// them: Philox z and condition indices into the buffer, the layer epilogues
// (bias, condition row, BatchNorm with batch statistics in compat mode, ReLU),
// and the fused output decode (tanh, Gumbel argmax, mode denormalisation) into
// typed columns. All pointers are device pointers passed as integers;
// asynchronous on `cuda_stream`; std::runtime_error when a launch fails.
#pragma once
#include <cstddef>
#include <cstdint>

namespace synthcore::cuda {

// z into buf[:, S - E:], and (C > 0) each row's condition index into cond.
void gan_prologue(uintptr_t buf, int S, int E, size_t n, uint32_t key0, uint32_t key1,
                  uint64_t row0, uintptr_t cond_cum, int C, int cond_fixed, uintptr_t cond,
                  uintptr_t cuda_stream);

// buf[r, out_off + j] = relu(bn(y[r, j] + b[j] + wc[cond[r], j])) for j < w; y has row
// stride ld. batch_rows > 0: BatchNorm over each group of batch_rows rows with gamma,
// beta and eps (compat mode; n a multiple of batch_rows); 0: no normalisation (eval
// mode, folded). wc may be 0 (no condition).
void gan_hidden_epilogue(uintptr_t y, int ld, uintptr_t b, uintptr_t wc, uintptr_t cond,
                         size_t n, int w, uintptr_t buf, int S, int out_off, size_t batch_rows,
                         uintptr_t gamma, uintptr_t beta, double eps, uintptr_t scratch,
                         uintptr_t cuda_stream);

// Decode the output pre-activations y (n x ld, before bias) into the columns.
// columns: n_columns x 4 int32 (kind, at, width, mode_off); outputs: n_columns
// device pointers (uint64). tvae: plain argmax and alpha noise sigma; else Gumbel.
void gan_decode(uintptr_t y, int ld, uintptr_t b, uintptr_t wc, uintptr_t cond, size_t n,
                int D, uintptr_t columns, int n_columns, uintptr_t outputs, uintptr_t means,
                uintptr_t stds, uintptr_t sigma, bool tvae, uint32_t key0, uint32_t key1,
                uint64_t row0, uintptr_t cuda_stream);

}  // namespace synthcore::cuda
