// Rule programs: the bytecode of python/synthcore/_rules_compile.py (the definition;
// python/synthcore/_reference/rules.py is the oracle). One instruction is five int32:
// (op, dst, a, b, c). Registers hold a block of values of one encoding:
//   float64, NaN = null | int64 (int, datetime ns, duration ns), INT64_MIN = null |
//   int64 category codes, -1 = null | uint8 bool: 0 false, 1 null, 2 true (Kleene
//   logic: and = min, or = max, not = 2 - x).
// The per-value functions below are shared by the CPU evaluator (cpp/src/rules.cpp)
// and the CUDA kernel (cuda/rules.cu), so both compute the same IEEE operations.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "synthcore/compact.hpp"
#include "synthcore/hd.hpp"

namespace synthcore {
namespace rules {

// Same order as OPS in python/synthcore/_rules_compile.py (a test checks the names).
enum Op : int32_t {
  LOAD_F64, LOAD_I64, LOAD_I32, LOAD_B, CONST_F, CONST_I, CONST_B, I2F,
  ADD_F, SUB_F, MUL_F, DIV_F, MOD_F, MIN_F, MAX_F, NEG_F, ABS_F, FLOOR_F, CEIL_F, RINT_F,
  ADD_I, SUB_I, MUL_I, MOD_I, MIN_I, MAX_I, NEG_I, ABS_I,
  EQ_F, NE_F, LT_F, LE_F, GT_F, GE_F, EQ_I, NE_I, LT_I, LE_I, GT_I, GE_I,
  EQ_B, NE_B, AND, OR, NOT, ISNULL_F, ISNULL_I, ISNULL_B, ISNULL_C,
  IN_F, IN_I, LUT_B, LUT_I, LUT_C, SEL_8, SEL_B, RULE, STORE_8, STORE_B,
  kNumOps
};
extern const char* const kOpNames[kNumOps];

// Column storage (COL_* in _rules_compile.py) and output storage.
enum ColumnType : int32_t { COL_F64 = 0, COL_I64 = 1, COL_I32 = 2, COL_B = 3 };

constexpr int64_t kIntNull = INT64_MIN;

SC_HD uint8_t cmp3(bool r, bool null) { return null ? uint8_t(1) : uint8_t(r ? 2 : 0); }
SC_HD bool f_null(double x) { return x != x; }

SC_HD double f_mod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0 && ((b < 0) != (m < 0))) m += b;
  if (m == 0) m = std::copysign(0.0, b);
  return m;
}
SC_HD double f_min(double a, double b) { return (f_null(a) | f_null(b)) ? NAN : (a < b ? a : b); }
SC_HD double f_max(double a, double b) { return (f_null(a) | f_null(b)) ? NAN : (a > b ? a : b); }
SC_HD double i2f(int64_t a) { return a == kIntNull ? NAN : static_cast<double>(a); }

// Integer arithmetic wraps (two's complement); INT64_MIN is null.
SC_HD int64_t i_add(int64_t a, int64_t b) {
  return (a == kIntNull) | (b == kIntNull) ? kIntNull
         : static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
SC_HD int64_t i_sub(int64_t a, int64_t b) {
  return (a == kIntNull) | (b == kIntNull) ? kIntNull
         : static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}
SC_HD int64_t i_mul(int64_t a, int64_t b) {
  return (a == kIntNull) | (b == kIntNull) ? kIntNull
         : static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
}
SC_HD int64_t i_mod(int64_t a, int64_t b) {  // floor modulo; x % 0 is null
  if ((a == kIntNull) | (b == kIntNull) | (b == 0)) return kIntNull;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}
SC_HD int64_t i_min(int64_t a, int64_t b) {
  return (a == kIntNull) | (b == kIntNull) ? kIntNull : (a < b ? a : b);
}
SC_HD int64_t i_max(int64_t a, int64_t b) {
  return (a == kIntNull) | (b == kIntNull) ? kIntNull : (a > b ? a : b);
}
SC_HD int64_t i_neg(int64_t a) { return a == kIntNull ? kIntNull : -a; }
SC_HD int64_t i_abs(int64_t a) { return a == kIntNull ? kIntNull : (a < 0 ? -a : a); }
SC_HD bool i_null2(int64_t a, int64_t b) { return (a == kIntNull) | (b == kIntNull); }
SC_HD uint8_t b_eq(uint8_t a, uint8_t b) { return cmp3(a == b, (a == 1) | (b == 1)); }
SC_HD uint8_t b_ne(uint8_t a, uint8_t b) { return cmp3(a != b, (a == 1) | (b == 1)); }
SC_HD uint8_t b_and(uint8_t a, uint8_t b) { return a < b ? a : b; }
SC_HD uint8_t b_or(uint8_t a, uint8_t b) { return a > b ? a : b; }

struct RuleProgram {
  const int32_t* code;     // [n_instr * 5]
  size_t n_instr;
  int n_registers;
  const double* const_f64;
  size_t n_const_f64;
  const int64_t* const_i64;
  size_t n_const_i64;
  int n_rules;
};

struct RuleData {
  const void* const* columns;  // one pointer per column, storage columns_type[k]
  const int32_t* column_types;
  int n_columns;
  void* const* outputs;        // derived columns: float64/int64 (STORE_8) or uint8 (STORE_B)
  const int32_t* output_types; // 0 f64, 1 i64, 3 uint8
  int n_outputs;
};

// Throws std::invalid_argument when an instruction reads outside the program's
// registers, pools, columns, rules or outputs, or loads a column of another type.
void validate_rule_program(const RuleProgram& p, const RuleData& d, int max_registers);

// mask[i] = 1 when no rule is false on row i; counts[k] = rows where rule k is false;
// derived columns written to d.outputs. One pass over row blocks, all rules at once.
void rules_evaluate(const RuleProgram& p, const RuleData& d, size_t n, uint8_t* mask,
                    int64_t* counts, int num_threads);

// rules_evaluate and, in the same pass, the kept rows (mask != 0) of `keep` compacted:
// each block's rows of keep.in[k] go to keep.out[k] right after its mask is known, while
// the block is in cache, at the block's offset among the kept rows (blocks are handed
// out in row order; a block whose earlier blocks are not all counted yet after a short
// wait is compacted after the pass instead). keep.out[k] and `positions` (when not
// null: base + row of each kept row) need room for n rows; only the first `kept` are
// written. Returns kept. The result does not depend on num_threads.
size_t rules_filter(const RuleProgram& p, const RuleData& d, size_t n, uint8_t* mask,
                    int64_t* counts, const compact::CompactColumns& keep, int64_t* positions,
                    int64_t base, int num_threads);

// A program lowered once and evaluated over short row ranges (a chunk of the copula
// kernel, synthcore/copula.hpp) by any number of threads: mask[i] for rows 0 .. m-1
// of d's columns, counts[k] += rows where rule k is false (one thread per counts),
// derived values to rows 0 .. m-1 of d.outputs.
class RuleChunkEvaluator {
  struct Registers;

 public:
  // one per thread: its registers, allocated and filled with the constants once
  class Workspace {
   public:
    Workspace();
    ~Workspace();

   private:
    friend class RuleChunkEvaluator;
    std::unique_ptr<Registers> registers_;
  };

  explicit RuleChunkEvaluator(const RuleProgram& p);
  ~RuleChunkEvaluator();
  void evaluate(const RuleData& d, size_t m, uint8_t* mask, int64_t* counts,
                Workspace& workspace) const;

 private:
  struct Lowered;
  RuleProgram p_;
  std::unique_ptr<Lowered> lowered_;
};

}  // namespace rules
}  // namespace synthcore
