// Gaussian-copula sampling: correlated normals -> per-dimension lookup -> typed
// output columns, in one pass per chunk of rows. The model arrives as flat
// arrays (python/synthcore/copula.py, SamplingPlan); the NumPy mirror is
// python/synthcore/_reference/copula.py and gives the same bits.
#pragma once
#include <cstddef>
#include <cstdint>

#include "synthcore/random.hpp"

namespace synthcore {
namespace rules {
struct RuleProgram;
}

enum CopulaDimKind : int8_t { kDimTable = 0, kDimThresholds = 1 };
enum CopulaOutKind : int8_t {
  kOutF64 = 0,       // table value
  kOutF32 = 1,       // table value, rounded to float
  kOutI64Round = 2,  // table value, rounded half-even to int64 (ints, datetimes in ns)
  kOutI32Round = 3,
  kOutCodeI32 = 4,   // threshold count (categorical code); -1 when null
  kOutCodeU8 = 5,    // threshold count as a byte (null indicators)
  kOutLevelI64 = 6,  // levels_i64[code]
  kOutLevelF64 = 7,  // levels_f64[code]
  kOutCodeI8 = 8,    // threshold count as int8 (categoricals of < 127 levels); -1 when null
};
constexpr int kCopulaStreamBits = 20;  // latent dim j uses Philox stream (stream << 20) + j

struct CopulaPlan {
  int d;                          // latent dimensions
  const double* chol;             // d x d, row-major, lower triangular
  const int8_t* dim_kind;         // [d]
  const double* z_lo;             // [d] table grid start
  const double* z_scale;          // [d] (knots - 1) / (z_hi - z_lo)
  const int64_t* knot_offsets;    // [d + 1] into knots
  const double* knots;            // tables and thresholds
  const int8_t* out_kind;         // [d]
  const int64_t* level_offsets;   // [d + 1] into levels_i64 / levels_f64
  const int64_t* levels_i64;
  const double* levels_f64;
  const int32_t* null_dim;        // [d], -1 for none; null dims precede the dims using them
  const int8_t* round_mode;       // [d] table values: 0 as is, 1 rint(v * q) / q, 2 rint(v / q) * q
  const double* round_q;          // [d]
};

// Rows row_offset .. row_offset + n - 1 into outputs[j] (dim j's typed buffer of n elements).
void copula_sample(const CopulaPlan& plan, PhiloxKey key, uint64_t stream, uint64_t row_offset,
                   size_t n, void* const* outputs, int num_threads);

// copula_sample with a rule program (synthcore/rules.hpp) evaluated on each chunk of rows
// while it is in cache, and the chunk's kept rows compacted at once: on return the
// first min(kept, limit) rows of every output are, in row order, the rows where no rule
// is false; mask[i] (n bytes) says whether row i was kept; counts[k] = rows where rule
// k is false; returns kept (all kept rows, also beyond limit). Program column c reads
// output column_dims[c] in the rule storage column_types[c] (rules::ColumnType), loaded
// from the dim's output kind (F64/LevelF64 or F32 -> COL_F64; I64Round/LevelI64 or
// I32Round -> COL_I64; CodeI32 or CodeI8 -> COL_I32; CodeU8 0/1 -> COL_B), a row whose
// null dim is set read as null; throws std::invalid_argument for other combinations.
// The program's derived columns (STORE_8 / STORE_B to output k) are written to
// derived[k] (n values of derived_types[k]: 0 float64, 1 int64, 3 uint8, as
// rules::RuleData's outputs) in the same pass and compacted with the kept rows, so
// their first min(kept, limit) values belong to the kept rows. Rows and counts do not
// depend on num_threads.
size_t copula_sample_rules(const CopulaPlan& plan, PhiloxKey key, uint64_t stream,
                           uint64_t row_offset, size_t n, void* const* outputs,
                           const rules::RuleProgram& program, const int32_t* column_dims,
                           const int32_t* column_types, int n_columns, void* const* derived,
                           const int32_t* derived_types, int n_derived, uint8_t* mask,
                           int64_t* counts, size_t limit, int num_threads);

// Outputs of n rows from given latent values (dim j's n values at z + j * n): the
// second half of copula_sample, for callers that produce z themselves (conditioning).
void copula_map(const CopulaPlan& plan, const double* z, size_t n, void* const* outputs,
                int num_threads);

// The stages on their own, for embedders (each on caller buffers of n elements):
// z = L z_raw for d dims (z_raw and z dim-major, stride n);
void copula_correlate(const double* chol, int d, const double* z_raw, double* z, size_t n,
                      int num_threads);
// a table over a uniform z-grid (linear interpolation, clamped, then rounding);
void copula_table_lookup(const double* z, size_t n, double z_lo, double z_scale,
                         const double* table, int64_t knots, int8_t round_mode, double round_q,
                         double* out, int num_threads);
// the number of sorted thresholds <= z.
void copula_threshold_codes(const double* z, size_t n, const double* thresholds,
                            int64_t n_thresholds, int32_t* out, int num_threads);

}  // namespace synthcore
