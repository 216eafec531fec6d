// CPU Gaussian-copula sampling (synthcore/copula.hpp). Each thread takes a
// contiguous range of rows and walks it in chunks of kRows that stay in cache:
// normals for every latent dim, z = L z_raw (accumulated in column order, no
// FMA, as the NumPy reference), then each dim's lookup straight into the
// caller's output buffers.
#include "synthcore/copula.hpp"
#include "synthcore/dispatch.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "synthcore/parallel.hpp"


namespace synthcore {
namespace {

constexpr size_t kRows = 1024;
constexpr size_t kMinRowsPerThread = 1 << 14;

SC_CLONES void correlate(const double* chol, int d, const double* zr, double* z, size_t m) {
  for (int i = 0; i < d; ++i) {
    double* zi = z + static_cast<size_t>(i) * kRows;
    const double* row = chol + static_cast<size_t>(i) * d;
    const double l0 = row[0];
    for (size_t r = 0; r < m; ++r) zi[r] = l0 * zr[r];
    for (int j = 1; j <= i; ++j) {
      const double lj = row[j];
      const double* zj = zr + static_cast<size_t>(j) * kRows;
      for (size_t r = 0; r < m; ++r) zi[r] = zi[r] + lj * zj[r];
    }
  }
}

SC_CLONES void table_lookup(const double* z, size_t m, double z_lo, double z_scale,
                            const double* table, int64_t knots, double* out) {
  const double last = static_cast<double>(knots - 1);
  const int64_t last_i = knots - 2;
  for (size_t r = 0; r < m; ++r) {
    const double x = std::min(std::max((z[r] - z_lo) * z_scale, 0.0), last);
    const int64_t i = std::min(static_cast<int64_t>(x), last_i);
    const double f = x - static_cast<double>(i);
    const double lo = table[i];
    out[r] = lo + f * (table[i + 1] - lo);
  }
}

SC_CLONES void round_values(double* v, size_t m, int8_t mode, double q) {
  if (mode == 1)
    for (size_t r = 0; r < m; ++r) v[r] = std::nearbyint(v[r] * q) / q;
  else if (mode == 2)
    for (size_t r = 0; r < m; ++r) v[r] = std::nearbyint(v[r] / q) * q;
}

// code = number of thresholds <= z. Up to 64 thresholds: compare with all of them
// (vectorises, no branches). Beyond: branch-free binary searches, 16 rows side by
// side so that their dependent loads overlap; one search at a time waits on
// every load in turn.
SC_CLONES void threshold_codes(const double* z, size_t m, const double* t, int64_t nt,
                               int32_t* code) {
  if (nt <= 64) {
    for (size_t r = 0; r < m; ++r) {
      int32_t c = 0;
      for (int64_t k = 0; k < nt; ++k) c += t[k] <= z[r] ? 1 : 0;
      code[r] = c;
    }
    return;
  }
  constexpr size_t kLanes = 16;
  size_t r = 0;
  for (; r + kLanes <= m; r += kLanes) {
    int64_t base[kLanes] = {};
    for (int64_t len = nt; len > 1;) {
      const int64_t half = len / 2;
      for (size_t l = 0; l < kLanes; ++l) base[l] += t[base[l] + half - 1] <= z[r + l] ? half : 0;
      len -= half;
    }
    for (size_t l = 0; l < kLanes; ++l)
      code[r + l] = static_cast<int32_t>(base[l]) + (t[base[l]] <= z[r + l] ? 1 : 0);
  }
  for (; r < m; ++r) {
    int64_t base = 0;
    for (int64_t len = nt; len > 1;) {
      const int64_t half = len / 2;
      base += t[base + half - 1] <= z[r] ? half : 0;
      len -= half;
    }
    code[r] = static_cast<int32_t>(base) + (t[base] <= z[r] ? 1 : 0);
  }
}

template <class T>
void write_null(T* out, const uint8_t* null, size_t m, T sentinel) {
  if (null == nullptr) return;
  for (size_t r = 0; r < m; ++r)
    if (null[r]) out[r] = sentinel;
}

// Outputs of rows r0 .. r0 + m - 1 from their latent values z (dim j at z + j * stride).
void map_rows(const CopulaPlan& p, const double* z, size_t stride, size_t r0, size_t m,
              void* const* outputs, double* value, int32_t* code) {
  const size_t d = static_cast<size_t>(p.d);
  for (size_t j = 0; j < d; ++j) {
    const double* zj = z + j * stride;
    const int64_t a = p.knot_offsets[j], len = p.knot_offsets[j + 1] - a;
    if (p.dim_kind[j] == kDimTable) {
      table_lookup(zj, m, p.z_lo[j], p.z_scale[j], p.knots + a, len, value);
      round_values(value, m, p.round_mode[j], p.round_q[j]);
    } else {
      threshold_codes(zj, m, p.knots + a, len, code);
    }
    const uint8_t* null = p.null_dim[j] >= 0
                              ? static_cast<const uint8_t*>(outputs[p.null_dim[j]]) + r0
                              : nullptr;
    const int64_t la = p.level_offsets[j];
    const double nan = std::numeric_limits<double>::quiet_NaN();
    switch (p.out_kind[j]) {
      case kOutF64: {
        double* o = static_cast<double*>(outputs[j]) + r0;
        std::copy(value, value + m, o);
        write_null(o, null, m, nan);
        break;
      }
      case kOutF32: {
        float* o = static_cast<float*>(outputs[j]) + r0;
        for (size_t r = 0; r < m; ++r) o[r] = static_cast<float>(value[r]);
        write_null(o, null, m, std::numeric_limits<float>::quiet_NaN());
        break;
      }
      case kOutI64Round: {
        int64_t* o = static_cast<int64_t*>(outputs[j]) + r0;
        for (size_t r = 0; r < m; ++r) o[r] = static_cast<int64_t>(std::nearbyint(value[r]));
        write_null(o, null, m, std::numeric_limits<int64_t>::min());
        break;
      }
      case kOutI32Round: {
        int32_t* o = static_cast<int32_t*>(outputs[j]) + r0;
        for (size_t r = 0; r < m; ++r) o[r] = static_cast<int32_t>(std::nearbyint(value[r]));
        write_null(o, null, m, std::numeric_limits<int32_t>::min());
        break;
      }
      case kOutCodeI32: {
        int32_t* o = static_cast<int32_t*>(outputs[j]) + r0;
        std::copy(code, code + m, o);
        write_null(o, null, m, int32_t{-1});
        break;
      }
      case kOutCodeU8: {
        uint8_t* o = static_cast<uint8_t*>(outputs[j]) + r0;
        for (size_t r = 0; r < m; ++r) o[r] = static_cast<uint8_t>(code[r]);
        write_null(o, null, m, uint8_t{0});
        break;
      }
      case kOutLevelI64: {
        int64_t* o = static_cast<int64_t*>(outputs[j]) + r0;
        for (size_t r = 0; r < m; ++r) o[r] = p.levels_i64[la + code[r]];
        write_null(o, null, m, std::numeric_limits<int64_t>::min());
        break;
      }
      case kOutLevelF64: {
        double* o = static_cast<double*>(outputs[j]) + r0;
        for (size_t r = 0; r < m; ++r) o[r] = p.levels_f64[la + code[r]];
        write_null(o, null, m, nan);
        break;
      }
    }
  }
}

void sample_rows(const CopulaPlan& p, PhiloxKey key, uint64_t stream, uint64_t row_offset,
                 size_t begin, size_t end, void* const* outputs) {
  const size_t d = static_cast<size_t>(p.d);
  std::vector<double> zr(d * kRows), z(d * kRows), value(kRows);
  std::vector<int32_t> code(kRows);
  for (size_t r0 = begin; r0 < end; r0 += kRows) {
    const size_t m = std::min(kRows, end - r0);
    for (size_t j = 0; j < d; ++j)
      normal_f64_fill(RandomStream{key, (stream << kCopulaStreamBits) + j}, row_offset + r0,
                      zr.data() + j * kRows, m);
    correlate(p.chol, p.d, zr.data(), z.data(), m);
    map_rows(p, z.data(), kRows, r0, m, outputs, value.data(), code.data());
  }
}

}  // namespace

void copula_sample(const CopulaPlan& plan, PhiloxKey key, uint64_t stream, uint64_t row_offset,
                   size_t n, void* const* outputs, int num_threads) {
  parallel_for(n, num_threads, kMinRowsPerThread, [&](size_t begin, size_t end) {
    sample_rows(plan, key, stream, row_offset, begin, end, outputs);
  });
}

void copula_correlate(const double* chol, int d, const double* z_raw, double* z, size_t n,
                      int num_threads) {
  parallel_for(n, num_threads, kMinRowsPerThread, [&](size_t begin, size_t end) {
    std::vector<double> in(static_cast<size_t>(d) * kRows), out(static_cast<size_t>(d) * kRows);
    for (size_t r0 = begin; r0 < end; r0 += kRows) {
      const size_t m = std::min(kRows, end - r0);
      for (int j = 0; j < d; ++j)
        std::copy(z_raw + static_cast<size_t>(j) * n + r0,
                  z_raw + static_cast<size_t>(j) * n + r0 + m, in.data() + j * kRows);
      correlate(chol, d, in.data(), out.data(), m);
      for (int j = 0; j < d; ++j)
        std::copy(out.data() + j * kRows, out.data() + j * kRows + m,
                  z + static_cast<size_t>(j) * n + r0);
    }
  });
}

void copula_table_lookup(const double* z, size_t n, double z_lo, double z_scale,
                         const double* table, int64_t knots, int8_t round_mode, double round_q,
                         double* out, int num_threads) {
  parallel_for(n, num_threads, kMinRowsPerThread, [&](size_t begin, size_t end) {
    table_lookup(z + begin, end - begin, z_lo, z_scale, table, knots, out + begin);
    round_values(out + begin, end - begin, round_mode, round_q);
  });
}

void copula_threshold_codes(const double* z, size_t n, const double* thresholds,
                            int64_t n_thresholds, int32_t* out, int num_threads) {
  parallel_for(n, num_threads, kMinRowsPerThread, [&](size_t begin, size_t end) {
    threshold_codes(z + begin, end - begin, thresholds, n_thresholds, out + begin);
  });
}

void copula_map(const CopulaPlan& plan, const double* z, size_t n, void* const* outputs,
                int num_threads) {
  parallel_for(n, num_threads, kMinRowsPerThread, [&](size_t begin, size_t end) {
    std::vector<double> value(kRows);
    std::vector<int32_t> code(kRows);
    for (size_t r0 = begin; r0 < end; r0 += kRows)
      map_rows(plan, z + r0, n, r0, std::min(kRows, end - r0), outputs, value.data(),
               code.data());
  });
}

}  // namespace synthcore
