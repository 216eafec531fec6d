// CPU Gaussian-copula sampling (synthcore/copula.hpp). Each thread takes
// contiguous pieces of rows and walks them in chunks of kRows that stay in cache:
// normals for every latent dim, then dim by dim z_i = sum_j L_ij z_raw_j
// (accumulated in column order, no FMA, as the NumPy reference) and that dim's
// lookup, written straight into the caller's output buffer.
#include "synthcore/copula.hpp"
#include "synthcore/dispatch.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "synthcore/parallel.hpp"
#include "synthcore/rules.hpp"


namespace synthcore {
namespace {

constexpr size_t kRows = 1024;
constexpr size_t kBlock = 16;  // rows whose sums stay in registers in correlate_dim
static_assert(kRows % kBlock == 0, "chunks hold whole register blocks");
constexpr size_t kMinRowsPerThread = 1 << 14;

// z_i over rows [0, m) rounded up to kBlock (zr holds kRows rows per dim; rows past m
// hold stale finite values whose sums are never stored to an output).
SC_CLONES void correlate_dim(const double* row, int i, const double* zr, double* zi, size_t m) {
  for (size_t r0 = 0; r0 < m; r0 += kBlock) {
    double acc[kBlock];
    const double l0 = row[0];
    for (size_t r = 0; r < kBlock; ++r) acc[r] = l0 * zr[r0 + r];
    for (int j = 1; j <= i; ++j) {
      const double lj = row[j];
      const double* zj = zr + static_cast<size_t>(j) * kRows + r0;
      for (size_t r = 0; r < kBlock; ++r) acc[r] = acc[r] + lj * zj[r];
    }
    for (size_t r = 0; r < kBlock; ++r) zi[r0 + r] = acc[r];
  }
}

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

// code = number of sorted thresholds <= z, through one of three searches:
// - a few thresholds: compare every row with each of them (vectorises over rows);
// - a guide over a uniform grid of buckets on [t_0, t_last]: guide[b] counts the
//   thresholds in earlier buckets, so code = guide[b] + the count among the at most
//   `span` thresholds that share z's bucket (the bucket map is monotone, so this is
//   exact; the padding is NaN, which compares false);
// - else branch-free binary searches, 16 rows side by side so that their dependent
//   loads overlap.
constexpr int64_t kLinearThresholds = 12;
constexpr int kMaxGuideSpan = 4;
constexpr int64_t kMaxGuideBuckets = 1 << 14;

struct ThresholdSearch {
  const double* t = nullptr;
  int64_t nt = 0;
  int span = 0;                  // 0: no guide
  double lo = 0.0, scale = 0.0, last_bucket = 0.0;
  std::vector<double> padded;    // t, then kMaxGuideSpan NaNs
  std::vector<int32_t> guide;    // [buckets + 1]

  ThresholdSearch() = default;
  ThresholdSearch(const double* thresholds, int64_t n) : t(thresholds), nt(n) {
    if (nt <= kLinearThresholds || nt > kMaxGuideBuckets / 4 || !(t[nt - 1] > t[0])) return;
    lo = t[0];
    for (int64_t buckets = 4 * nt; buckets <= kMaxGuideBuckets; buckets *= 4) {
      scale = static_cast<double>(buckets) / (t[nt - 1] - lo);
      last_bucket = static_cast<double>(buckets - 1);
      if (!std::isfinite(scale)) return;
      guide.assign(static_cast<size_t>(buckets) + 1, 0);
      for (int64_t k = 0; k < nt; ++k) ++guide[static_cast<size_t>(bucket(t[k])) + 1];
      int64_t widest = 0;
      for (int64_t b = 0; b < buckets; ++b) {
        widest = std::max<int64_t>(widest, guide[b + 1]);
        guide[b + 1] += guide[b];
      }
      if (widest <= kMaxGuideSpan) {
        span = static_cast<int>(std::max<int64_t>(widest, 1));
        padded.assign(t, t + nt);
        padded.resize(static_cast<size_t>(nt + kMaxGuideSpan),
                      std::numeric_limits<double>::quiet_NaN());
        return;
      }
    }
    guide.clear();
  }
  // Monotone in z; NaN goes to bucket 0 (and then counts no threshold, as t <= NaN is false).
  int32_t bucket(double z) const {
    return static_cast<int32_t>(std::min(last_bucket, std::max(0.0, (z - lo) * scale)));
  }
};

template <int kSpan>
SC_ALWAYS_INLINE void guided_codes(const ThresholdSearch& s, const double* z, size_t m,
                                   int32_t* code) {
  const double* t = s.padded.data();
  const int32_t* guide = s.guide.data();
  const double lo = s.lo, scale = s.scale, last = s.last_bucket;
  for (size_t r = 0; r < m; ++r) {
    const double x = z[r];
    const int32_t base = guide[static_cast<int32_t>(std::min(last, std::max(0.0, (x - lo) * scale)))];
    int32_t c = base;
    for (int k = 0; k < kSpan; ++k) c += t[base + k] <= x ? 1 : 0;
    code[r] = c;
  }
}

SC_CLONES void threshold_codes(const ThresholdSearch& s, const double* z, size_t m,
                               int32_t* code) {
  const double* t = s.t;
  const int64_t nt = s.nt;
  if (nt <= kLinearThresholds) {
    for (size_t r = 0; r < m; ++r) code[r] = 0;
    for (int64_t k = 0; k < nt; ++k) {
      const double tk = t[k];
      for (size_t r = 0; r < m; ++r) code[r] += tk <= z[r] ? 1 : 0;
    }
    return;
  }
  switch (s.span) {
    case 1: return guided_codes<1>(s, z, m, code);
    case 2: return guided_codes<2>(s, z, m, code);
    case 3: return guided_codes<3>(s, z, m, code);
    case 4: return guided_codes<4>(s, z, m, code);
    default: break;
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

// The searches of a plan's threshold dims, built once per call.
std::vector<ThresholdSearch> threshold_searches(const CopulaPlan& p) {
  std::vector<ThresholdSearch> out(static_cast<size_t>(p.d));
  for (int j = 0; j < p.d; ++j)
    if (p.dim_kind[j] == kDimThresholds) {
      const int64_t a = p.knot_offsets[j];
      out[static_cast<size_t>(j)] = ThresholdSearch(p.knots + a, p.knot_offsets[j + 1] - a);
    }
  return out;
}

// Output j of rows r0 .. r0 + m - 1 from the dim's latent values zj.
void map_dim(const CopulaPlan& p, const ThresholdSearch& search, size_t j, const double* zj,
             size_t r0, size_t m, void* const* outputs, double* value, int32_t* code) {
  const int8_t kind = p.out_kind[j];
  const int64_t a = p.knot_offsets[j], len = p.knot_offsets[j + 1] - a;
  if (p.dim_kind[j] == kDimTable) {
    // float64 output: looked up and rounded in place in the caller's buffer
    double* v = kind == kOutF64 ? static_cast<double*>(outputs[j]) + r0 : value;
    table_lookup(zj, m, p.z_lo[j], p.z_scale[j], p.knots + a, len, v);
    round_values(v, m, p.round_mode[j], p.round_q[j]);
  } else {
    int32_t* c = kind == kOutCodeI32 ? static_cast<int32_t*>(outputs[j]) + r0 : code;
    threshold_codes(search, zj, m, c);
  }
  const uint8_t* null = p.null_dim[j] >= 0
                            ? static_cast<const uint8_t*>(outputs[p.null_dim[j]]) + r0
                            : nullptr;
  const int64_t la = p.level_offsets[j];
  const double nan = std::numeric_limits<double>::quiet_NaN();
  switch (kind) {
    case kOutF64:
      write_null(static_cast<double*>(outputs[j]) + r0, null, m, nan);
      break;
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
    case kOutCodeI32:
      write_null(static_cast<int32_t*>(outputs[j]) + r0, null, m, int32_t{-1});
      break;
    case kOutCodeU8: {
      uint8_t* o = static_cast<uint8_t*>(outputs[j]) + r0;
      for (size_t r = 0; r < m; ++r) o[r] = static_cast<uint8_t>(code[r]);
      write_null(o, null, m, uint8_t{0});
      break;
    }
    case kOutCodeI8: {
      int8_t* o = static_cast<int8_t*>(outputs[j]) + r0;
      for (size_t r = 0; r < m; ++r) o[r] = static_cast<int8_t>(code[r]);
      write_null(o, null, m, int8_t{-1});
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

struct NoChunkHook {
  void operator()(size_t, size_t) const {}
};

// after_chunk(r0, m) runs once rows r0 .. r0 + m - 1 of every output are written
template <class AfterChunk = NoChunkHook>
void sample_rows(const CopulaPlan& p, const std::vector<ThresholdSearch>& searches,
                 PhiloxKey key, uint64_t stream, uint64_t row_offset, size_t begin, size_t end,
                 void* const* outputs, AfterChunk&& after_chunk = AfterChunk{}) {
  const size_t d = static_cast<size_t>(p.d);
  std::vector<double> zr(d * kRows), z(kRows), value(kRows);
  std::vector<int32_t> code(kRows);
  for (size_t r0 = begin; r0 < end; r0 += kRows) {
    const size_t m = std::min(kRows, end - r0);
    for (size_t j = 0; j < d; ++j)
      normal_f64_fill(RandomStream{key, (stream << kCopulaStreamBits) + j}, row_offset + r0,
                      zr.data() + j * kRows, m);
    for (size_t j = 0; j < d; ++j) {
      correlate_dim(p.chol + j * d, static_cast<int>(j), zr.data(), z.data(), m);
      map_dim(p, searches[j], j, z.data(), r0, m, outputs, value.data(), code.data());
    }
    after_chunk(r0, m);
  }
}

// ---- rules on each chunk (copula_sample_rules) ----------------------------------------

size_t out_itemsize(int8_t kind) {
  switch (kind) {
    case kOutF64: case kOutI64Round: case kOutLevelI64: case kOutLevelF64: return 8;
    case kOutF32: case kOutI32Round: case kOutCodeI32: return 4;
    default: return 1;
  }
}

// How a program column is read from its dim's output (the storage the Python path
// gives the same column, synthcore/rules.py _TableView): the output itself, or
// widened into a chunk-sized scratch block.
enum RuleLoad : int8_t { kLoadDirect, kLoadF32, kLoadI32, kLoadI8, kLoadBool, kLoadBad };

RuleLoad rule_load(int8_t kind, int32_t type) {
  switch (type) {
    case rules::COL_F64:
      if (kind == kOutF64 || kind == kOutLevelF64) return kLoadDirect;
      return kind == kOutF32 ? kLoadF32 : kLoadBad;
    case rules::COL_I64:
      if (kind == kOutI64Round || kind == kOutLevelI64) return kLoadDirect;
      return kind == kOutI32Round ? kLoadI32 : kLoadBad;
    case rules::COL_I32:
      if (kind == kOutCodeI32) return kLoadDirect;
      return kind == kOutCodeI8 ? kLoadI8 : kLoadBad;
    case rules::COL_B:
      return kind == kOutCodeU8 ? kLoadBool : kLoadBad;
    default:
      return kLoadBad;
  }
}

// out[k] = data[idx[k]] for the chunk's kept rows idx (increasing): out <= data and
// idx[k] >= k, so no write lands on a row still to be read.
template <class T>
SC_CLONES void gather_kept(const uint16_t* __restrict idx, size_t kept, const T* __restrict data,
                           T* __restrict out) {
  for (size_t k = 0; k < kept; ++k) out[k] = data[idx[k]];
}

void gather_kept_column(size_t itemsize, const uint16_t* idx, size_t kept, const char* data,
                        char* out) {
  switch (itemsize) {
    case 8: gather_kept(idx, kept, reinterpret_cast<const uint64_t*>(data), reinterpret_cast<uint64_t*>(out)); break;
    case 4: gather_kept(idx, kept, reinterpret_cast<const uint32_t*>(data), reinterpret_cast<uint32_t*>(out)); break;
    default: gather_kept(idx, kept, reinterpret_cast<const uint8_t*>(data), reinterpret_cast<uint8_t*>(out)); break;
  }
}

}  // namespace

void copula_sample(const CopulaPlan& plan, PhiloxKey key, uint64_t stream, uint64_t row_offset,
                   size_t n, void* const* outputs, int num_threads) {
  const std::vector<ThresholdSearch> searches = threshold_searches(plan);
  parallel_for(n, num_threads, kMinRowsPerThread, [&](size_t begin, size_t end) {
    sample_rows(plan, searches, key, stream, row_offset, begin, end, outputs);
  });
}

size_t copula_sample_rules(const CopulaPlan& plan, PhiloxKey key, uint64_t stream,
                           uint64_t row_offset, size_t n, void* const* outputs,
                           const rules::RuleProgram& program, const int32_t* column_dims,
                           const int32_t* column_types, int n_columns, void* const* derived,
                           const int32_t* derived_types, int n_derived, uint8_t* mask,
                           int64_t* counts, size_t limit, int num_threads) {
  const int n_rules = program.n_rules;
  n_derived = std::max(n_derived, 0);
  for (int k = 0; k < n_derived; ++k)
    if (derived_types[k] != 0 && derived_types[k] != 1 && derived_types[k] != 3)
      throw std::invalid_argument("derived column " + std::to_string(k) +
                                  ": storage must be 0 (float64), 1 (int64) or 3 (uint8)");
  std::vector<RuleLoad> loads(static_cast<size_t>(std::max(n_columns, 0)));
  for (int c = 0; c < n_columns; ++c) {
    const int32_t j = column_dims[c];
    if (j < 0 || j >= plan.d)
      throw std::invalid_argument("rule column " + std::to_string(c) + " reads no output dim");
    loads[c] = rule_load(plan.out_kind[j], column_types[c]);
    if (loads[c] == kLoadBad)
      throw std::invalid_argument("rule column " + std::to_string(c) +
                                  ": its storage cannot be read from the dim's output kind");
  }
  {
    std::vector<const void*> none(static_cast<size_t>(std::max(n_columns, 0)), nullptr);
    const rules::RuleData shape{none.data(), column_types, n_columns, derived, derived_types,
                                n_derived};
    rules::validate_rule_program(program, shape, 1 << 16);
  }
  std::fill_n(counts, n_rules, int64_t{0});
  if (n == 0) return 0;
  const size_t d = static_cast<size_t>(plan.d);
  // the columns compacted with the kept rows: the d outputs, then the derived columns
  const size_t n_kept_cols = d + static_cast<size_t>(n_derived);
  std::vector<char*> kept_col(n_kept_cols);
  std::vector<size_t> itemsize(n_kept_cols);
  for (size_t j = 0; j < d; ++j) {
    kept_col[j] = static_cast<char*>(outputs[j]);
    itemsize[j] = out_itemsize(plan.out_kind[j]);
  }
  for (size_t k = 0; k < static_cast<size_t>(n_derived); ++k) {
    kept_col[d + k] = static_cast<char*>(derived[k]);
    itemsize[d + k] = derived_types[k] == 3 ? 1 : 8;
  }
  const std::vector<ThresholdSearch> searches = threshold_searches(plan);
  const rules::RuleChunkEvaluator evaluator(program);
  // Pieces of rows in row order; each is sampled, checked and compacted to its own start
  // by one thread, then moved down to its place among the kept rows as soon as every
  // earlier piece is in place (while it is still in cache), by whichever thread finds it
  // so: a piece's destination only overlaps rows of earlier pieces that are done.
  const size_t threads = std::min<size_t>(std::max(num_threads, 1),
                                          std::max<size_t>(1, n / kMinRowsPerThread));
  const size_t piece = threads == 1 ? n
                       : std::max(kMinRowsPerThread / 4, (n + 16 * threads - 1) / (16 * threads));
  const size_t n_pieces = (n + piece - 1) / piece;
  // A piece that finds every earlier piece in place while it is still running moves its
  // rows so far down at once and compacts its remaining chunks straight to their places.
  std::vector<size_t> kept_in(n_pieces, 0), start_of(n_pieces, 0);
  std::vector<char> done(n_pieces, 0);
  // pieces before `frontier` hold rows 0 .. placed - 1 (written under the lock; placed
  // before frontier, so a piece that reads frontier == itself reads its place)
  std::atomic<size_t> frontier{0}, placed{0};
  bool moving = false;
  std::mutex lock;
  auto move_piece = [&](size_t p, size_t to) {
    const size_t begin = start_of[p];
    if (to >= limit || to == begin) return;
    const size_t take = std::min(kept_in[p], limit - to);
    for (size_t j = 0; j < n_kept_cols; ++j) {
      char* col = kept_col[j];
      const size_t s = itemsize[j];
      std::memmove(col + to * s, col + begin * s, take * s);
    }
  };
  parallel_for(n_pieces, static_cast<int>(threads), 1, [&](size_t p0, size_t p1) {
    std::vector<int64_t> local(static_cast<size_t>(std::max(n_rules, 1)), 0);
    std::vector<uint64_t> scratch(static_cast<size_t>(std::max(n_columns, 1)) * kRows);
    std::vector<const void*> cols(static_cast<size_t>(std::max(n_columns, 0)));
    std::vector<void*> chunk_derived(static_cast<size_t>(n_derived));
    std::vector<uint16_t> idx(kRows + 1);
    rules::RuleChunkEvaluator::Workspace workspace;
    for (size_t p = p0; p < p1; ++p) {
      const size_t begin = p * piece, end = std::min(n, begin + piece);
      size_t start = begin;   // the piece's kept rows so far: start .. cursor - 1
      size_t cursor = begin;
      sample_rows(plan, searches, key, stream, row_offset, begin, end, outputs,
                  [&](size_t r0, size_t m) {
          for (int c = 0; c < n_columns; ++c) {
            const int32_t j = column_dims[c];
            const char* base = static_cast<const char*>(outputs[j]) + r0 * itemsize[j];
            const int32_t nd = plan.null_dim[j];
            const uint8_t* null = nd >= 0 ? static_cast<const uint8_t*>(outputs[nd]) + r0 : nullptr;
            void* to = scratch.data() + static_cast<size_t>(c) * kRows;
            switch (loads[c]) {
              case kLoadDirect:   // NaN / INT64_MIN / -1 already written on null rows
                cols[c] = base;
                continue;
              case kLoadF32: {    // NaN on null rows
                const float* x = reinterpret_cast<const float*>(base);
                double* o = static_cast<double*>(to);
                for (size_t i = 0; i < m; ++i) o[i] = static_cast<double>(x[i]);
                break;
              }
              case kLoadI32: {
                const int32_t* x = reinterpret_cast<const int32_t*>(base);
                int64_t* o = static_cast<int64_t*>(to);
                for (size_t i = 0; i < m; ++i) o[i] = x[i];
                if (null)
                  for (size_t i = 0; i < m; ++i) o[i] = null[i] ? rules::kIntNull : o[i];
                break;
              }
              case kLoadI8: {     // -1 on null rows
                const int8_t* x = reinterpret_cast<const int8_t*>(base);
                int32_t* o = static_cast<int32_t*>(to);
                for (size_t i = 0; i < m; ++i) o[i] = x[i];
                break;
              }
              default: {          // bool 0 / 1 -> 0 false, 2 true; 1 null
                const uint8_t* x = reinterpret_cast<const uint8_t*>(base);
                uint8_t* o = static_cast<uint8_t*>(to);
                for (size_t i = 0; i < m; ++i) o[i] = uint8_t(x[i] != 0 ? 2 : 0);
                if (null)
                  for (size_t i = 0; i < m; ++i) o[i] = null[i] ? uint8_t(1) : o[i];
                break;
              }
            }
            cols[c] = to;
          }
          uint8_t* mk = mask + r0;
          // derived values of the chunk's rows land at the chunk's rows of their columns
          for (size_t k = 0; k < chunk_derived.size(); ++k)
            chunk_derived[k] = kept_col[d + k] + r0 * itemsize[d + k];
          const rules::RuleData data{cols.data(), column_types, n_columns, chunk_derived.data(),
                                     derived_types, n_derived};
          evaluator.evaluate(data, m, mk, local.data(), workspace);
          // the chunk's kept rows go right after the piece's earlier kept rows
          size_t first = 0;
          if (cursor == r0)
            while (first < m && mk[first]) ++first;   // already in place
          // rows from `first` on: a few rejected ones -> the runs between them moved
          // with memmove; else the kept ones gathered by index
          size_t n_rej = 0;
          for (size_t i = first; i < m; ++i) {
            idx[n_rej] = static_cast<uint16_t>(i);
            n_rej += mk[i] == 0;
          }
          size_t kept = m - first - n_rej;
          const size_t at = cursor + first;
          if (n_rej > 0 && n_rej <= m / 8) {
            idx[n_rej] = static_cast<uint16_t>(m);   // the end closes the last run
            for (size_t j = 0; j < n_kept_cols; ++j) {
              const size_t s = itemsize[j];
              char* col = kept_col[j];
              char* out = col + at * s;
              const char* data = col + r0 * s;
              size_t from = first;
              for (size_t q = 0; q <= n_rej; ++q) {
                const size_t len = idx[q] - from;
                if (len) std::memmove(out, data + from * s, len * s);
                out += len * s;
                from = size_t{idx[q]} + 1;
              }
            }
          } else if (n_rej > 0 && kept > 0) {
            size_t k = 0;
            for (size_t i = first; i < m; ++i) {
              idx[k] = static_cast<uint16_t>(i);
              k += mk[i];
            }
            for (size_t j = 0; j < n_kept_cols; ++j) {
              char* col = kept_col[j];
              gather_kept_column(itemsize[j], idx.data(), kept, col + r0 * itemsize[j],
                                 col + at * itemsize[j]);
            }
          }
          kept += first;
          cursor += kept;
          if (start == begin && begin != 0 && frontier.load(std::memory_order_acquire) == p) {
            const size_t to = placed.load(std::memory_order_relaxed);
            if (to != begin) {
              for (size_t j = 0; j < n_kept_cols; ++j) {
                char* col = kept_col[j];
                std::memmove(col + to * itemsize[j], col + begin * itemsize[j],
                             (cursor - begin) * itemsize[j]);
              }
              cursor = to + (cursor - begin);
              start = to;
            }
          }
        });
      kept_in[p] = cursor - start;
      start_of[p] = start;
      std::unique_lock<std::mutex> g(lock);
      done[p] = 1;
      if (moving) continue;
      moving = true;
      while (frontier.load() < n_pieces && done[frontier.load()]) {
        const size_t q = frontier.load(), to = placed.load();
        g.unlock();
        move_piece(q, to);
        g.lock();
        placed.store(to + kept_in[q], std::memory_order_relaxed);
        frontier.store(q + 1, std::memory_order_release);
      }
      moving = false;
    }
    std::lock_guard<std::mutex> g(lock);
    for (int k = 0; k < n_rules; ++k) counts[k] += local[k];
  });
  return placed.load();
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
  const ThresholdSearch search(thresholds, n_thresholds);
  parallel_for(n, num_threads, kMinRowsPerThread, [&](size_t begin, size_t end) {
    threshold_codes(search, z + begin, end - begin, out + begin);
  });
}

void copula_map(const CopulaPlan& plan, const double* z, size_t n, void* const* outputs,
                int num_threads) {
  const std::vector<ThresholdSearch> searches = threshold_searches(plan);
  parallel_for(n, num_threads, kMinRowsPerThread, [&](size_t begin, size_t end) {
    std::vector<double> value(kRows);
    std::vector<int32_t> code(kRows);
    for (size_t r0 = begin; r0 < end; r0 += kRows) {
      const size_t m = std::min(kRows, end - r0);
      for (size_t j = 0; j < static_cast<size_t>(plan.d); ++j)
        map_dim(plan, searches[j], j, z + j * n + r0, r0, m, outputs, value.data(), code.data());
    }
  });
}

}  // namespace synthcore
