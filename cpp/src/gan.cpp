// CPU CTGAN / TVAE inference (synthcore/gan.hpp). Each thread takes whole row
// blocks; a block's activations stay in a per-thread buffer (block x S floats)
// and only the decoded columns leave it.
//
// The GEMM is gan_gemm.cpp's; everything else here (normals, Gumbel noise with
// the shared log, BatchNorm, decode) rounds as the NumPy reference does.
#include "synthcore/gan.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "synthcore/dispatch.hpp"
#include "synthcore/math/log.hpp"
#include "synthcore/parallel.hpp"
#include "synthcore/random.hpp"

namespace synthcore {
namespace {

// The GEMM on sub-blocks of rows whose activations stay in L1/L2 while every
// weight panel streams past them (compat blocks are a whole BatchNorm batch).
// Each element's value does not depend on the split.
constexpr size_t kGemmRows = 96;
void gemm_blocked(const float* x, size_t ldx, size_t m, size_t k, const float* wt,
                  const float* b, size_t ld, float* y) {
  for (size_t r = 0; r < m; r += kGemmRows)
    gan_gemm(x + r * ldx, ldx, std::min(kGemmRows, m - r), k, wt, b, ld, y + r * ld);
}

struct Scratch {
  std::vector<float> buf, y, z, noise;
  std::vector<uint32_t> words;
  std::vector<double> u, gumbel;
  std::vector<int32_t> cond;
};

// Hidden layer epilogue: condition row, BatchNorm (compat), ReLU, into the buffer.
SC_CLONES void hidden_epilogue(const GanLayer& L, const float* y, size_t m, const int32_t* cond,
                               bool compat, float* buf, size_t S, std::vector<double>& stat) {
  const size_t w = static_cast<size_t>(L.out_w), ld = static_cast<size_t>(L.ld);
  float* yy = const_cast<float*>(y);
  if (cond && L.wc)
    for (size_t r = 0; r < m; ++r) {
      if (cond[r] < 0) continue;
      const float* c = L.wc + static_cast<size_t>(cond[r]) * ld;
      float* yr = yy + r * ld;
      for (size_t j = 0; j < w; ++j) yr[j] = yr[j] + c[j];
    }
  if (compat && L.batch_norm) {
    stat.assign(2 * w, 0.0);
    double* mean = stat.data();
    double* var = mean + w;
    for (size_t r = 0; r < m; ++r)
      for (size_t j = 0; j < w; ++j) mean[j] += static_cast<double>(y[r * ld + j]);
    for (size_t j = 0; j < w; ++j) mean[j] /= static_cast<double>(m);
    for (size_t r = 0; r < m; ++r)
      for (size_t j = 0; j < w; ++j) {
        const double d = static_cast<double>(y[r * ld + j]) - mean[j];
        var[j] += d * d;
      }
    for (size_t j = 0; j < w; ++j)
      var[j] = static_cast<double>(L.gamma[j]) / std::sqrt(var[j] / static_cast<double>(m) + L.eps);
    for (size_t r = 0; r < m; ++r) {
      float* o = buf + r * S + L.out_off;
      for (size_t j = 0; j < w; ++j) {
        const float v = static_cast<float>((static_cast<double>(y[r * ld + j]) - mean[j]) *
                                               var[j] + static_cast<double>(L.beta[j]));
        o[j] = v > 0.0f ? v : 0.0f;
      }
    }
    return;
  }
  for (size_t r = 0; r < m; ++r) {
    float* o = buf + r * S + L.out_off;
    const float* yr = y + r * ld;
    for (size_t j = 0; j < w; ++j) o[j] = yr[j] > 0.0f ? yr[j] : 0.0f;
  }
}

// Gumbel noise g = -log(-log(u)) for a block's words, with the shared fdlibm log
// (bit-identical to the NumPy and CUDA backends), in a loop the compiler vectorises.
SC_CLONES void gumbel_fill(const uint32_t* words, size_t m, double* g) {
  for (size_t i = 0; i < m; ++i)
    g[i] = -math::log_positive_normal(-math::log_positive_normal(gan_u01_open(words[i])));
}

// Argmax of y[at + i] + g[at + i] over a span (the first maximum wins).
inline int span_argmax_gumbel(const float* y, const double* g, int at, int width) {
  int best = 0;
  double best_v = -INFINITY;
  for (int i = 0; i < width; ++i) {
    const double v = static_cast<double>(y[at + i]) + g[at + i];
    if (v > best_v) { best_v = v; best = i; }
  }
  return best;
}

inline int span_argmax(const float* y, int at, int width) {
  int best = 0;
  for (int i = 1; i < width; ++i)
    if (y[at + i] > y[at + best]) best = i;
  return best;
}

void decode_rows(const GanPlan& P, const float* y, size_t ld, size_t m, size_t first,
                 const double* gumbel, const float* noise) {
  const size_t D = static_cast<size_t>(P.D);
  for (size_t r = 0; r < m; ++r) {
    const float* yr = y + r * ld;
    const double* wr = gumbel ? gumbel + r * D : nullptr;
    const size_t row = first + r;
    for (const GanColumn& c : P.columns) {
      if (c.kind == kGanDiscrete) {
        const int k = wr ? span_argmax_gumbel(yr, wr, c.at, c.width)
                         : span_argmax(yr, c.at, c.width);
        static_cast<int32_t*>(c.out)[row] = k;
        continue;
      }
      float alpha = std::tanh(yr[c.at]);
      if (noise) {
        alpha = alpha + P.sigma[c.at] * noise[r * D + c.at];
        alpha = std::min(1.0f, std::max(-1.0f, alpha));
      }
      const int k = c.mode_off + (wr ? span_argmax_gumbel(yr, wr, c.at + 1, c.width)
                                     : span_argmax(yr, c.at + 1, c.width));
      const double x = static_cast<double>(alpha) * (4.0 * P.stds[k]) + P.means[k];
      if (c.kind == kGanContI64)
        static_cast<int64_t*>(c.out)[row] = static_cast<int64_t>(std::nearbyint(x));
      else
        static_cast<double*>(c.out)[row] = x;
    }
  }
}

void run_block(const GanPlan& P, rng::PhiloxKey key, uint64_t row0, size_t first, size_t m,
               bool compat, int cond_fixed, Scratch& s, std::vector<double>& stat) {
  const size_t S = static_cast<size_t>(P.S), E = static_cast<size_t>(P.E);
  const size_t D = static_cast<size_t>(P.D);
  s.z.resize(m * E);
  random_normal<float>(RandomStream{key, kGanStreamZ}, row0 * E, s.z.data(), m * E, 0.0, 1.0, 1);
  for (size_t r = 0; r < m; ++r)
    std::memcpy(s.buf.data() + r * S + (S - E), s.z.data() + r * E, E * sizeof(float));
  const int32_t* cond = nullptr;
  if (P.C > 0) {
    s.cond.resize(m);
    if (cond_fixed >= 0) {
      std::fill(s.cond.begin(), s.cond.end(), cond_fixed);
    } else {
      s.u.resize(m);
      random_uniform<double>(RandomStream{key, kGanStreamCond}, row0, s.u.data(), m, 0.0, 1.0, 1);
      const double* cum = P.cond_cum;
      for (size_t r = 0; r < m; ++r) {
        const auto i = std::upper_bound(cum, cum + P.C, s.u[r]) - cum;
        s.cond[r] = static_cast<int32_t>(std::min<ptrdiff_t>(i, P.C - 1));
      }
    }
    cond = s.cond.data();
  }
  for (const GanLayer& L : P.hidden) {
    gemm_blocked(s.buf.data() + L.in_off, S, m, static_cast<size_t>(L.in_w), L.wt, L.b,
              static_cast<size_t>(L.ld), s.y.data());
    hidden_epilogue(L, s.y.data(), m, cond, compat, s.buf.data(), S, stat);
  }
  const GanLayer& F = P.final_layer;
  const size_t ld = static_cast<size_t>(F.ld);
  gemm_blocked(s.buf.data() + F.in_off, S, m, static_cast<size_t>(F.in_w), F.wt, F.b, ld,
               s.y.data());
  if (cond && F.wc)
    for (size_t r = 0; r < m; ++r) {
      if (cond[r] < 0) continue;
      const float* c = F.wc + static_cast<size_t>(cond[r]) * ld;
      float* yr = s.y.data() + r * ld;
      for (size_t j = 0; j < D; ++j) yr[j] = yr[j] + c[j];
    }
  const double* gumbel = nullptr;
  const float* noise = nullptr;
  if (P.tvae) {
    s.noise.resize(m * D);
    random_normal<float>(RandomStream{key, kGanStreamAlphaNoise}, row0 * D, s.noise.data(), m * D,
                         0.0, 1.0, 1);
    noise = s.noise.data();
  } else {
    s.words.resize(m * D);
    random_raw(RandomStream{key, kGanStreamGumbel}, row0 * D, s.words.data(), m * D, 1);
    s.gumbel.resize(m * D);
    gumbel_fill(s.words.data(), m * D, s.gumbel.data());
    gumbel = s.gumbel.data();
  }
  decode_rows(P, s.y.data(), ld, m, first, gumbel, noise);
}

}  // namespace

void gan_sample(const GanPlan& P, rng::PhiloxKey key, uint64_t row_begin, size_t n,
                size_t block_rows, bool compat, int cond_fixed, int num_threads) {
  if (n == 0) return;
  block_rows = std::max<size_t>(1, block_rows);
  const size_t n_blocks = (n + block_rows - 1) / block_rows;
  size_t ld_max = static_cast<size_t>(P.final_layer.ld);
  for (const GanLayer& L : P.hidden) ld_max = std::max(ld_max, static_cast<size_t>(L.ld));
  parallel_for(n_blocks, num_threads, 1, [&](size_t b0, size_t b1) {
    Scratch s;
    std::vector<double> stat;
    s.buf.assign(block_rows * static_cast<size_t>(P.S), 0.0f);
    s.y.assign(block_rows * ld_max, 0.0f);
    for (size_t b = b0; b < b1; ++b) {
      const size_t first = b * block_rows;
      const size_t m = std::min(block_rows, n - first);
      run_block(P, key, row_begin + first, first, m, compat, cond_fixed, s, stat);
    }
  });
}

}  // namespace synthcore
