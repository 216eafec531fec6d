// CPU evaluator for rule programs (synthcore/rules.hpp). Rows are taken in blocks of
// kBlock; every instruction of the program runs over the block before the next
// instruction, so each loop is a simple vectorisable pass over values that stay in
// L1/L2, and no array the size of the table is ever allocated. Registers are pointers:
// a load of a float64 or int64 column just points into the column; constants are
// filled once per piece of work. Threads take pieces of blocks (parallel.hpp).
#include "synthcore/rules.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "synthcore/dispatch.hpp"
#include "synthcore/parallel.hpp"

namespace synthcore {
namespace rules {

const char* const kOpNames[kNumOps] = {
    "LOAD_F64", "LOAD_I64", "LOAD_I32", "LOAD_B", "CONST_F", "CONST_I", "CONST_B", "I2F",
    "ADD_F", "SUB_F", "MUL_F", "DIV_F", "MOD_F", "MIN_F", "MAX_F", "NEG_F", "ABS_F",
    "FLOOR_F", "CEIL_F", "RINT_F", "ADD_I", "SUB_I", "MUL_I", "MOD_I", "MIN_I", "MAX_I",
    "NEG_I", "ABS_I", "EQ_F", "NE_F", "LT_F", "LE_F", "GT_F", "GE_F", "EQ_I", "NE_I", "LT_I",
    "LE_I", "GT_I", "GE_I", "EQ_B", "NE_B", "AND", "OR", "NOT", "ISNULL_F", "ISNULL_I",
    "ISNULL_B", "ISNULL_C", "IN_F", "IN_I", "LUT_B", "LUT_I", "LUT_C", "SEL_8", "SEL_B",
    "RULE", "STORE_8", "STORE_B"};

namespace {

// 8,192 rows: measured fastest on the benchmark (2,048 was ~20% slower; longer runs
// per column stream better, and the registers, 64 KiB each, still sit in L2).
constexpr size_t kBlock = 8192;
// rules_filter streams its outputs out when the rows it may write (n rows of every
// gathered column) are at least this many bytes: well past the last-level cache
constexpr size_t kStreamOutBytes = size_t{64} << 20;

// Which of a, b, c are register operands, and whether the op writes dst.
struct OpShape {
  int regs;  // bit 0: a, bit 1: b, bit 2: c
  bool dst;
};

OpShape shape(int op) {
  switch (op) {
    case LOAD_F64: case LOAD_I64: case LOAD_I32: case LOAD_B:
    case CONST_F: case CONST_I: case CONST_B: return {0, true};
    case SEL_8: case SEL_B: return {7, true};
    case RULE: case STORE_8: case STORE_B: return {1, false};
    case I2F: case NEG_F: case ABS_F: case FLOOR_F: case CEIL_F: case RINT_F: case NEG_I:
    case ABS_I: case NOT: case ISNULL_F: case ISNULL_I: case ISNULL_B: case ISNULL_C:
    case IN_F: case IN_I: case LUT_B: case LUT_I: case LUT_C: return {1, true};
    default: return {3, true};
  }
}

[[noreturn]] void bad(size_t pc, const std::string& what) {
  throw std::invalid_argument("rule program instruction " + std::to_string(pc) + ": " + what);
}

template <class T> SC_ALWAYS_INLINE T* R(void* const* ptr, int r) {
  return static_cast<T*>(ptr[r]);
}

// ---- lowering: the bytecode plus a few fused instructions ----------------------------
// The CPU evaluator runs a lowered copy of the program in which
//   * a comparison or arithmetic operation whose right operand is a constant register
//     reads the constant as a scalar (no pass over a filled register), and
//   * a comparison or `in` whose result only feeds the RULE right after it updates the
//     mask and the violation count directly (no uint8 result block written and re-read).
// Each fused loop computes exactly what the instructions it replaces compute, so the
// numpy, cpu and cuda results stay identical (tests/test_rules.py checks numpy and cpu).
enum Fused : int32_t {
  X_FCMP_K = 1000,   // dst = cmp(a, kf)          sub = comparison (0 EQ 1 NE 2 LT 3 LE 4 GT 5 GE)
  X_ICMP_K,          // dst = cmp(a, ki)
  X_FCMP_RULE,       // rule c over cmp(a, b)
  X_ICMP_RULE,
  X_FCMP_K_RULE,     // rule c over cmp(a, kf)
  X_ICMP_K_RULE,
  X_IN_F_RULE,       // rule c over a in pool[b : b + sub]
  X_IN_I_RULE,
  X_FBIN_K,          // dst = a (+ - * /) kf       sub = 0 ADD 1 SUB 2 MUL 3 DIV
  X_IN_BITS,         // dst = a in set, the set being the bits of ki (values 0..63 only)
  X_IN_BITS_RULE,    // rule c over a in bits ki
};

// Is every value of the int set in [0, 64)? Then `x in set` is one bit test
// (vectorises), with bit v of *bits set for each value v.
bool small_int_set(const int64_t* set, int size, int64_t* bits) {
  uint64_t b = 0;
  for (int k = 0; k < size; ++k) {
    if (set[k] < 0 || set[k] >= 64) return false;
    b |= uint64_t{1} << set[k];
  }
  *bits = static_cast<int64_t>(b);
  return true;
}

// hit[i] = 1 when x[i] equals some value of the set: the set is the outer loop so the
// loop over rows vectorises (one compare per row and value, as the scalar form).
template <class T>
SC_ALWAYS_INLINE void in_set_hits(const T* x, size_t m, const T* set, int size, uint8_t* hit) {
  for (size_t i = 0; i < m; ++i) hit[i] = 0;
  for (int k = 0; k < size; ++k) {
    const T v = set[k];
    for (size_t i = 0; i < m; ++i) hit[i] |= uint8_t(x[i] == v);
  }
}

// hit[i] = 1 when x[i] is in the set of values in [0, 64) whose bits are `bits`; x
// outside that range (null included) is not. Its own loop, written so that GCC
// vectorises it (the shift inside a rule loop keeps it scalar).
SC_ALWAYS_INLINE void in_bits_hits(const int64_t* __restrict x, size_t m, uint64_t bits,
                                   uint8_t* __restrict hit) {
  for (size_t i = 0; i < m; ++i) {
    const uint64_t ux = static_cast<uint64_t>(x[i]);
    hit[i] = uint8_t((ux < 64 ? bits >> ux : 0) & 1);
  }
}

struct Ins {
  int op, dst, a, b, c, sub;
  double kf;
  int64_t ki;
};

bool reads(const int32_t* ins, int r) {
  const OpShape s = shape(ins[0]);
  return ((s.regs & 1) && ins[2] == r) || ((s.regs & 2) && ins[3] == r) ||
         ((s.regs & 4) && ins[4] == r);
}

// Is register r, written at pc, read by no instruction after `after` before it is
// written again?
bool dead_after(const RuleProgram& p, size_t after, int r) {
  for (size_t q = after + 1; q < p.n_instr; ++q) {
    const int32_t* ins = p.code + 5 * q;
    if (reads(ins, r)) return false;
    if (shape(ins[0]).dst && ins[1] == r) return true;
  }
  return true;
}

std::vector<Ins> lower(const RuleProgram& p) {
  const int nr = p.n_registers;
  // constant registers (never reused by the allocator) and their values
  std::vector<int> kind(nr, 0);
  std::vector<double> kf(nr, 0.0);
  std::vector<int64_t> ki(nr, 0);
  for (size_t pc = 0; pc < p.n_instr; ++pc) {
    const int32_t* ins = p.code + 5 * pc;
    if (ins[0] == CONST_F && !f_null(p.const_f64[ins[3]])) {
      kind[ins[1]] = 1;
      kf[ins[1]] = p.const_f64[ins[3]];
    }
    if (ins[0] == CONST_I && p.const_i64[ins[3]] != kIntNull) {
      kind[ins[1]] = 2;
      ki[ins[1]] = p.const_i64[ins[3]];
    }
  }
  static const int kFlip[6] = {0, 1, 4, 5, 2, 3};  // a < k  <=>  k > a
  std::vector<Ins> out;
  out.reserve(p.n_instr);
  for (size_t pc = 0; pc < p.n_instr; ++pc) {
    const int32_t* ins = p.code + 5 * pc;
    Ins x{ins[0], ins[1], ins[2], ins[3], ins[4], 0, 0.0, 0};
    const int32_t* next = pc + 1 < p.n_instr ? p.code + 5 * (pc + 1) : nullptr;
    const bool feeds_rule = next && next[0] == RULE && next[2] == x.dst &&
                            dead_after(p, pc + 1, x.dst);
    const bool fcmp = x.op >= EQ_F && x.op <= GE_F;
    const bool icmp = x.op >= EQ_I && x.op <= GE_I;
    if (fcmp || icmp) {
      const int want = fcmp ? 1 : 2;
      int sub = x.op - (fcmp ? EQ_F : EQ_I), l = x.a, r = x.b;
      if (kind[r] != want && kind[l] == want) {
        std::swap(l, r);
        sub = kFlip[sub];
      }
      const bool k = kind[r] == want;
      if (k) {
        x.a = l;
        x.sub = sub;
        x.kf = kf[r];
        x.ki = ki[r];
      } else {
        x.sub = x.op - (fcmp ? EQ_F : EQ_I);
      }
      if (feeds_rule) {
        x.op = k ? (fcmp ? X_FCMP_K_RULE : X_ICMP_K_RULE) : (fcmp ? X_FCMP_RULE : X_ICMP_RULE);
        x.c = next[4];
        ++pc;
      } else if (k) {
        x.op = fcmp ? X_FCMP_K : X_ICMP_K;
      }
      // (a comparison of two registers that does not feed a rule stays as it is)
      if (!k && !feeds_rule) x = Ins{ins[0], ins[1], ins[2], ins[3], ins[4], 0, 0.0, 0};
    } else if (x.op == IN_I && small_int_set(p.const_i64 + x.b, x.c, &x.ki)) {
      if (feeds_rule) {
        x.op = X_IN_BITS_RULE;
        x.c = next[4];
        ++pc;
      } else {
        x.op = X_IN_BITS;
      }
    } else if ((x.op == IN_F || x.op == IN_I) && feeds_rule) {
      x.op = x.op == IN_F ? X_IN_F_RULE : X_IN_I_RULE;
      x.sub = ins[4];  // set size
      x.c = next[4];
      ++pc;
    } else if (x.op >= ADD_F && x.op <= DIV_F && kind[x.b] == 1) {
      x.sub = x.op - ADD_F;
      x.kf = kf[x.b];
      x.op = X_FBIN_K;
    }
    out.push_back(x);
  }
  return out;
}

// The blocks one call of run_blocks evaluates: next() hands them out one at a time
// (false when there are no more); done(), when set, is told that a block's mask is
// complete, while the block's columns are still in cache. span: the most rows of a block.
struct BlockFeed {
  bool (*next)(void* ctx, size_t* r0, size_t* m);
  void (*done)(void* ctx, size_t r0, size_t m);
  void* ctx;
  size_t span;
};

// Registers of one thread: kept between calls by a caller that evaluates many short
// ranges (RuleChunkEvaluator), so they are allocated and the constants filled once.
struct RegisterFile {
  size_t span = 0;
  std::vector<uint64_t> storage;
  std::vector<void*> ptr, buf;
  std::vector<uint8_t> hit;  // `in` results before they become bools

  void prepare(const RuleProgram& p, size_t want) {
    if (want <= span) return;
    span = want;
    const int nr = p.n_registers;
    storage.assign(static_cast<size_t>(nr) * span, 0);
    ptr.assign(nr, nullptr);
    buf.assign(nr, nullptr);
    for (int r = 0; r < nr; ++r) buf[r] = ptr[r] = storage.data() + static_cast<size_t>(r) * span;
    // constants: their registers are never reused, fill them once
    for (size_t pc = 0; pc < p.n_instr; ++pc) {
      const int32_t* ins = p.code + 5 * pc;
      const int op = ins[0], dst = ins[1], b = ins[3];
      if (op == CONST_F) std::fill_n(static_cast<double*>(buf[dst]), span, p.const_f64[b]);
      if (op == CONST_I) std::fill_n(static_cast<int64_t*>(buf[dst]), span, p.const_i64[b]);
      if (op == CONST_B) std::fill_n(static_cast<uint8_t*>(buf[dst]), span, uint8_t(b));
    }
    hit.assign(span, 0);
  }
};

SC_CLONES void run_blocks(const RuleProgram& p, const std::vector<Ins>& lowered,
                          const RuleData& d, const BlockFeed& feed, uint8_t* mask,
                          int64_t* counts, RegisterFile* registers = nullptr) {
  RegisterFile own;
  RegisterFile& file = registers ? *registers : own;
  file.prepare(p, feed.span);
  std::vector<void*>& ptr = file.ptr;
  std::vector<void*>& buf = file.buf;
  uint8_t* hit = file.hit.data();
  void* const* P = ptr.data();
  const Ins* lcode = lowered.data();
  const size_t n_lowered = lowered.size();
  size_t next_r0 = 0, next_m = 0;
  while (feed.next(feed.ctx, &next_r0, &next_m)) {
    // copies whose address never escapes: stores through the uint8_t registers could
    // otherwise alias them, which keeps the loops below from vectorising
    const size_t r0 = next_r0, m = next_m;
    uint8_t* mk = mask + r0;
    std::fill_n(mk, m, uint8_t(1));
    for (size_t pc = 0; pc < n_lowered; ++pc) {
      const Ins& L = lcode[pc];
      const int op = L.op, dst = L.dst, a = L.a, b = L.b, c = L.c;
      if (op == CONST_F || op == CONST_I || op == CONST_B) continue;
      void* out = buf[dst];
#define F_BIN(expr)                                                        \
  {                                                                        \
    const double* x = R<double>(P, a); const double* y = R<double>(P, b); \
    double* o = static_cast<double*>(out);                                 \
    for (size_t i = 0; i < m; ++i) o[i] = (expr);                          \
    ptr[dst] = out; break;                                                 \
  }
#define F_UN(expr)                                                         \
  {                                                                        \
    const double* x = R<double>(P, a); double* o = static_cast<double*>(out); \
    for (size_t i = 0; i < m; ++i) o[i] = (expr);                          \
    ptr[dst] = out; break;                                                 \
  }
#define I_BIN(expr)                                                          \
  {                                                                          \
    const int64_t* x = R<int64_t>(P, a); const int64_t* y = R<int64_t>(P, b); \
    int64_t* o = static_cast<int64_t*>(out);                                 \
    for (size_t i = 0; i < m; ++i) o[i] = (expr);                            \
    ptr[dst] = out; break;                                                   \
  }
#define I_UN(expr)                                                           \
  {                                                                          \
    const int64_t* x = R<int64_t>(P, a); int64_t* o = static_cast<int64_t*>(out); \
    for (size_t i = 0; i < m; ++i) o[i] = (expr);                            \
    ptr[dst] = out; break;                                                   \
  }
#define F_CMP(cmp)                                                         \
  {                                                                        \
    const double* x = R<double>(P, a); const double* y = R<double>(P, b); \
    uint8_t* o = static_cast<uint8_t*>(out);                               \
    for (size_t i = 0; i < m; ++i)                                         \
      o[i] = cmp3(x[i] cmp y[i], f_null(x[i]) | f_null(y[i]));             \
    ptr[dst] = out; break;                                                 \
  }
#define I_CMP(cmp)                                                           \
  {                                                                          \
    const int64_t* x = R<int64_t>(P, a); const int64_t* y = R<int64_t>(P, b); \
    uint8_t* o = static_cast<uint8_t*>(out);                                 \
    for (size_t i = 0; i < m; ++i) o[i] = cmp3(x[i] cmp y[i], i_null2(x[i], y[i])); \
    ptr[dst] = out; break;                                                   \
  }
#define B_BIN(expr)                                                          \
  {                                                                          \
    const uint8_t* x = R<uint8_t>(P, a); const uint8_t* y = R<uint8_t>(P, b); \
    uint8_t* o = static_cast<uint8_t*>(out);                                 \
    for (size_t i = 0; i < m; ++i) o[i] = (expr);                            \
    ptr[dst] = out; break;                                                   \
  }
      switch (op) {
        case LOAD_F64:
          ptr[dst] = const_cast<double*>(static_cast<const double*>(d.columns[b]) + r0);
          break;
        case LOAD_I64:
          ptr[dst] = const_cast<int64_t*>(static_cast<const int64_t*>(d.columns[b]) + r0);
          break;
        case LOAD_B:
          ptr[dst] = const_cast<uint8_t*>(static_cast<const uint8_t*>(d.columns[b]) + r0);
          break;
        case LOAD_I32: {
          const int32_t* x = static_cast<const int32_t*>(d.columns[b]) + r0;
          int64_t* o = static_cast<int64_t*>(out);
          for (size_t i = 0; i < m; ++i) o[i] = x[i];
          ptr[dst] = out;
          break;
        }
        case I2F: {
          const int64_t* x = R<int64_t>(P, a);
          double* o = static_cast<double*>(out);
          for (size_t i = 0; i < m; ++i) o[i] = i2f(x[i]);
          ptr[dst] = out;
          break;
        }
        case ADD_F: F_BIN(x[i] + y[i])
        case SUB_F: F_BIN(x[i] - y[i])
        case MUL_F: F_BIN(x[i] * y[i])
        case DIV_F: F_BIN(x[i] / y[i])
        case MOD_F: F_BIN(f_mod(x[i], y[i]))
        case MIN_F: F_BIN(f_min(x[i], y[i]))
        case MAX_F: F_BIN(f_max(x[i], y[i]))
        case NEG_F: F_UN(-x[i])
        case ABS_F: F_UN(std::fabs(x[i]))
        case FLOOR_F: F_UN(std::floor(x[i]))
        case CEIL_F: F_UN(std::ceil(x[i]))
        case RINT_F: F_UN(std::rint(x[i]))
        case ADD_I: I_BIN(i_add(x[i], y[i]))
        case SUB_I: I_BIN(i_sub(x[i], y[i]))
        case MUL_I: I_BIN(i_mul(x[i], y[i]))
        case MOD_I: I_BIN(i_mod(x[i], y[i]))
        case MIN_I: I_BIN(i_min(x[i], y[i]))
        case MAX_I: I_BIN(i_max(x[i], y[i]))
        case NEG_I: I_UN(i_neg(x[i]))
        case ABS_I: I_UN(i_abs(x[i]))
        case EQ_F: F_CMP(==)
        case NE_F: F_CMP(!=)
        case LT_F: F_CMP(<)
        case LE_F: F_CMP(<=)
        case GT_F: F_CMP(>)
        case GE_F: F_CMP(>=)
        case EQ_I: I_CMP(==)
        case NE_I: I_CMP(!=)
        case LT_I: I_CMP(<)
        case LE_I: I_CMP(<=)
        case GT_I: I_CMP(>)
        case GE_I: I_CMP(>=)
        case EQ_B: B_BIN(b_eq(x[i], y[i]))
        case NE_B: B_BIN(b_ne(x[i], y[i]))
        case AND: B_BIN(b_and(x[i], y[i]))
        case OR: B_BIN(b_or(x[i], y[i]))
        case NOT: {
          const uint8_t* x = R<uint8_t>(P, a);
          uint8_t* o = static_cast<uint8_t*>(out);
          for (size_t i = 0; i < m; ++i) o[i] = uint8_t(2 - x[i]);
          ptr[dst] = out;
          break;
        }
        case ISNULL_F: case ISNULL_I: case ISNULL_B: case ISNULL_C: {
          uint8_t* o = static_cast<uint8_t*>(out);
          if (op == ISNULL_F) {
            const double* x = R<double>(P, a);
            for (size_t i = 0; i < m; ++i) o[i] = uint8_t(f_null(x[i]) ? 2 : 0);
          } else if (op == ISNULL_B) {
            const uint8_t* x = R<uint8_t>(P, a);
            for (size_t i = 0; i < m; ++i) o[i] = uint8_t(x[i] == 1 ? 2 : 0);
          } else {
            const int64_t* x = R<int64_t>(P, a);
            const int64_t nul = op == ISNULL_I ? kIntNull : -1;
            for (size_t i = 0; i < m; ++i) o[i] = uint8_t((op == ISNULL_C ? x[i] < 0 : x[i] == nul) ? 2 : 0);
          }
          ptr[dst] = out;
          break;
        }
        case IN_F: {
          const double* x = R<double>(P, a);
          const double* set = p.const_f64 + b;
          uint8_t* o = static_cast<uint8_t*>(out);
          in_set_hits(x, m, set, c, hit);
          for (size_t i = 0; i < m; ++i) o[i] = cmp3(hit[i], f_null(x[i]));
          ptr[dst] = out;
          break;
        }
        case IN_I: {
          const int64_t* x = R<int64_t>(P, a);
          const int64_t* set = p.const_i64 + b;
          uint8_t* o = static_cast<uint8_t*>(out);
          in_set_hits(x, m, set, c, hit);
          for (size_t i = 0; i < m; ++i) o[i] = cmp3(hit[i], x[i] == kIntNull);
          ptr[dst] = out;
          break;
        }
        case LUT_B: case LUT_I: case LUT_C: {
          const int64_t* x = R<int64_t>(P, a);
          const int64_t* table = p.const_i64 + b;
          const int64_t fill = op == LUT_B ? 1 : (op == LUT_I ? kIntNull : -1);
          if (op == LUT_B) {
            uint8_t* o = static_cast<uint8_t*>(out);
            for (size_t i = 0; i < m; ++i)
              o[i] = uint8_t((x[i] < 0) | (x[i] >= c) ? fill : table[x[i]]);
          } else {
            int64_t* o = static_cast<int64_t*>(out);
            for (size_t i = 0; i < m; ++i) o[i] = (x[i] < 0) | (x[i] >= c) ? fill : table[x[i]];
          }
          ptr[dst] = out;
          break;
        }
        case SEL_8: {
          const uint8_t* k = R<uint8_t>(P, a);
          const int64_t* x = R<int64_t>(P, b);
          const int64_t* y = R<int64_t>(P, c);
          int64_t* o = static_cast<int64_t*>(out);
          for (size_t i = 0; i < m; ++i) o[i] = k[i] == 2 ? x[i] : y[i];
          ptr[dst] = out;
          break;
        }
        case SEL_B: {
          const uint8_t* k = R<uint8_t>(P, a);
          const uint8_t* x = R<uint8_t>(P, b);
          const uint8_t* y = R<uint8_t>(P, c);
          uint8_t* o = static_cast<uint8_t*>(out);
          for (size_t i = 0; i < m; ++i) o[i] = k[i] == 2 ? x[i] : y[i];
          ptr[dst] = out;
          break;
        }
        case RULE: {
          const uint8_t* x = R<uint8_t>(P, a);
          int64_t violated = 0;
          for (size_t i = 0; i < m; ++i) {
            const uint8_t v = x[i] == 0;
            violated += v;
            mk[i] &= uint8_t(v ^ 1);
          }
          counts[c] += violated;
          break;
        }
        case STORE_8:
          std::memcpy(static_cast<int64_t*>(d.outputs[c]) + r0, P[a], m * 8);
          break;
        case STORE_B:
          std::memcpy(static_cast<uint8_t*>(d.outputs[c]) + r0, P[a], m);
          break;
#define CMP_CASES(BODY)                                        \
  switch (L.sub) {                                              \
    case 0: BODY(==) break; case 1: BODY(!=) break;             \
    case 2: BODY(<) break; case 3: BODY(<=) break;              \
    case 4: BODY(>) break; default: BODY(>=) break;             \
  }
// (restrict: the uint8 mask could alias the operands, which keeps GCC from
// vectorising; a 32-bit count suffices for one block)
#define RULE_LOOP(VIOLATED)                                     \
  {                                                             \
    uint8_t* __restrict mr = mk;                                \
    uint32_t violated = 0;                                      \
    for (size_t i = 0; i < m; ++i) {                            \
      const uint32_t v = uint32_t(VIOLATED);                    \
      violated += v;                                            \
      mr[i] &= uint8_t(v ^ 1);                                  \
    }                                                           \
    counts[c] += violated;                                      \
  }
// A float comparison is false (its rule violated) exactly when the opposite ordered
// comparison is true: both are false when an operand is NaN (null), so one compare per
// row does what `!(x cmp y) & !null` does.
#define F_VIOLATED_CASES(LOOP, X, Y)                              \
  switch (L.sub) {                                                \
    case 0: LOOP(((X) < (Y)) | ((X) > (Y))) break;  /* = */        \
    case 1: LOOP((X) == (Y)) break;                 /* != */       \
    case 2: LOOP((X) >= (Y)) break;                 /* < */        \
    case 3: LOOP((X) > (Y)) break;                  /* <= */       \
    case 4: LOOP((X) <= (Y)) break;                 /* > */        \
    default: LOOP((X) < (Y)) break;                 /* >= */       \
  }
        case X_FCMP_K: {
          const double* x = R<double>(P, a);
          const double k = L.kf;
          uint8_t* o = static_cast<uint8_t*>(out);
#define BODY(cmp) for (size_t i = 0; i < m; ++i) o[i] = cmp3(x[i] cmp k, f_null(x[i]));
          CMP_CASES(BODY)
#undef BODY
          ptr[dst] = out;
          break;
        }
        case X_ICMP_K: {
          const int64_t* x = R<int64_t>(P, a);
          const int64_t k = L.ki;
          uint8_t* o = static_cast<uint8_t*>(out);
#define BODY(cmp) for (size_t i = 0; i < m; ++i) o[i] = cmp3(x[i] cmp k, x[i] == kIntNull);
          CMP_CASES(BODY)
#undef BODY
          ptr[dst] = out;
          break;
        }
        case X_FCMP_K_RULE: {
          const double* x = R<double>(P, a);
          const double k = L.kf;
#define BODY(X, Y) F_VIOLATED_CASES(RULE_LOOP, X, Y)
          BODY(x[i], k)
#undef BODY
          break;
        }
        case X_ICMP_K_RULE: {
          const int64_t* x = R<int64_t>(P, a);
          const int64_t k = L.ki;
#define BODY(cmp) RULE_LOOP(!(x[i] cmp k) & (x[i] != kIntNull))
          CMP_CASES(BODY)
#undef BODY
          break;
        }
        case X_FCMP_RULE: {
          const double* x = R<double>(P, a);
          const double* y = R<double>(P, b);
#define BODY(X, Y) F_VIOLATED_CASES(RULE_LOOP, X, Y)
          BODY(x[i], y[i])
#undef BODY
          break;
        }
        case X_ICMP_RULE: {
          const int64_t* x = R<int64_t>(P, a);
          const int64_t* y = R<int64_t>(P, b);
#define BODY(cmp) RULE_LOOP(!(x[i] cmp y[i]) & !i_null2(x[i], y[i]))
          CMP_CASES(BODY)
#undef BODY
          break;
        }
        case X_IN_F_RULE: case X_IN_I_RULE: {
          const int size = L.sub;
          if (op == X_IN_F_RULE) {
            const double* x = R<double>(P, a);
            const double* set = p.const_f64 + b;
            in_set_hits(x, m, set, size, hit);
            RULE_LOOP(!hit[i] & !f_null(x[i]))
          } else {
            const int64_t* x = R<int64_t>(P, a);
            const int64_t* set = p.const_i64 + b;
            in_set_hits(x, m, set, size, hit);
            RULE_LOOP(!hit[i] & (x[i] != kIntNull))
          }
          break;
        }
        case X_FBIN_K: {
          const double* x = R<double>(P, a);
          const double k = L.kf;
          double* o = static_cast<double*>(out);
          switch (L.sub) {
            case 0: for (size_t i = 0; i < m; ++i) o[i] = x[i] + k; break;
            case 1: for (size_t i = 0; i < m; ++i) o[i] = x[i] - k; break;
            case 2: for (size_t i = 0; i < m; ++i) o[i] = x[i] * k; break;
            default: for (size_t i = 0; i < m; ++i) o[i] = x[i] / k; break;
          }
          ptr[dst] = out;
          break;
        }
        case X_IN_BITS: {
          const int64_t* x = R<int64_t>(P, a);
          const uint64_t bits = static_cast<uint64_t>(L.ki);
          uint8_t* o = static_cast<uint8_t*>(out);
          in_bits_hits(x, m, bits, hit);
          for (size_t i = 0; i < m; ++i) o[i] = cmp3(hit[i], x[i] == kIntNull);
          ptr[dst] = out;
          break;
        }
        case X_IN_BITS_RULE: {
          const int64_t* x = R<int64_t>(P, a);
          const uint64_t bits = static_cast<uint64_t>(L.ki);
          in_bits_hits(x, m, bits, hit);
          RULE_LOOP(!hit[i] & (x[i] != kIntNull))
          break;
        }
#undef CMP_CASES
#undef F_VIOLATED_CASES
#undef RULE_LOOP
        default:
          break;
      }
#undef F_BIN
#undef F_UN
#undef I_BIN
#undef I_UN
#undef F_CMP
#undef I_CMP
#undef B_BIN
    }
    if (feed.done) feed.done(feed.ctx, r0, m);
  }
}

}  // namespace

void validate_rule_program(const RuleProgram& p, const RuleData& d, int max_registers) {
  if (p.n_registers < 1 || p.n_registers > max_registers)
    throw std::invalid_argument("rule program: register count out of range");
  for (size_t pc = 0; pc < p.n_instr; ++pc) {
    const int32_t* ins = p.code + 5 * pc;
    const int op = ins[0], dst = ins[1], a = ins[2], b = ins[3], c = ins[4];
    if (op < 0 || op >= kNumOps) bad(pc, "unknown opcode");
    const OpShape s = shape(op);
    if (s.dst && (dst < 0 || dst >= p.n_registers)) bad(pc, "destination register out of range");
    const int fields[3] = {a, b, c};
    for (int k = 0; k < 3; ++k)
      if ((s.regs >> k & 1) && (fields[k] < 0 || fields[k] >= p.n_registers))
        bad(pc, "operand register out of range");
    auto column = [&](int want) {
      if (b < 0 || b >= d.n_columns) bad(pc, "column index out of range");
      if (d.column_types[b] != want) bad(pc, "column storage does not match the load");
    };
    switch (op) {
      case LOAD_F64: column(COL_F64); break;
      case LOAD_I64: column(COL_I64); break;
      case LOAD_I32: column(COL_I32); break;
      case LOAD_B: column(COL_B); break;
      case CONST_F: if (b < 0 || size_t(b) >= p.n_const_f64) bad(pc, "constant out of range"); break;
      case CONST_I: if (b < 0 || size_t(b) >= p.n_const_i64) bad(pc, "constant out of range"); break;
      case CONST_B: if (b < 0 || b > 2) bad(pc, "boolean constant must be 0, 1 or 2"); break;
      case IN_F:
        if (b < 0 || c < 0 || size_t(b) + size_t(c) > p.n_const_f64) bad(pc, "set out of range");
        break;
      case IN_I: case LUT_B: case LUT_I: case LUT_C:
        if (b < 0 || c < 0 || size_t(b) + size_t(c) > p.n_const_i64) bad(pc, "table out of range");
        break;
      case RULE: if (c < 0 || c >= p.n_rules) bad(pc, "rule index out of range"); break;
      case STORE_8: case STORE_B:
        if (c < 0 || c >= d.n_outputs) bad(pc, "output index out of range");
        if ((op == STORE_B) != (d.output_types[c] == 3)) bad(pc, "output storage mismatch");
        break;
      default: break;
    }
  }
}

void rules_evaluate(const RuleProgram& p, const RuleData& d, size_t n, uint8_t* mask,
                    int64_t* counts, int num_threads) {
  std::fill_n(counts, p.n_rules, int64_t{0});
  const size_t n_blocks = (n + kBlock - 1) / kBlock;
  std::mutex lock;
  const std::vector<Ins> lowered = lower(p);
  parallel_for(n_blocks, num_threads, 4, [&](size_t b0, size_t b1) {
    std::vector<int64_t> local(std::max(p.n_rules, 1), 0);
    struct Range {
      size_t at, last;
    } range{b0 * kBlock, std::min(n, b1 * kBlock)};
    auto next = [](void* ctx, size_t* r0, size_t* m) {
      Range* g = static_cast<Range*>(ctx);
      if (g->at >= g->last) return false;
      *r0 = g->at;
      *m = std::min(kBlock, g->last - g->at);
      g->at += *m;
      return true;
    };
    // registers as long as the longest block of this piece (a short table needs less)
    const BlockFeed feed{next, nullptr, &range, std::min(kBlock, range.last - range.at)};
    run_blocks(p, lowered, d, feed, mask, local.data());
    std::lock_guard<std::mutex> g(lock);
    for (int k = 0; k < p.n_rules; ++k) counts[k] += local[k];
  });
}

struct RuleChunkEvaluator::Lowered {
  std::vector<Ins> code;
};

struct RuleChunkEvaluator::Registers {
  RegisterFile file;
};

RuleChunkEvaluator::RuleChunkEvaluator(const RuleProgram& p)
    : p_(p), lowered_(new Lowered{lower(p)}) {}

RuleChunkEvaluator::~RuleChunkEvaluator() = default;

RuleChunkEvaluator::Workspace::Workspace() : registers_(new Registers) {}
RuleChunkEvaluator::Workspace::~Workspace() = default;

void RuleChunkEvaluator::evaluate(const RuleData& d, size_t m, uint8_t* mask, int64_t* counts,
                                  Workspace& workspace) const {
  if (m == 0) return;
  struct One {
    size_t m;
    bool given;
  } one{m, false};
  auto next = [](void* ctx, size_t* r0, size_t* rows) {
    One* o = static_cast<One*>(ctx);
    if (o->given) return false;
    o->given = true;
    *r0 = 0;
    *rows = o->m;
    return true;
  };
  const BlockFeed feed{next, nullptr, &one, std::min(kBlock, m)};
  run_blocks(p_, lowered_->code, d, feed, mask, counts, &workspace.registers_->file);
}

namespace {

// Shared state of one rules_filter call. Blocks are handed out in row order; each
// block's kept count is published when its mask is done, and the prefix of published
// counts (the frontier) gives every block before it its output offset.
struct FilterPass {
  const compact::CompactColumns* keep;
  int64_t* positions;
  int64_t base;
  uint8_t* mask;
  size_t n, n_blocks, block;
  bool stream_out;  // outputs far larger than the caches: staged, then streamed out
  std::atomic<size_t> next{0};
  std::unique_ptr<std::atomic<int64_t>[]> block_kept;  // -1 until counted
  std::vector<size_t> offset;                          // valid below the frontier
  std::vector<uint8_t> deferred;                       // compacted after the pass
  std::mutex lock;                                     // guards running and offset
  size_t running = 0;
  std::atomic<size_t> frontier{0};
};

void compact_block_rows(const FilterPass& s, size_t b) {
  const size_t r0 = b * s.block, m = std::min(s.block, s.n - r0), at = s.offset[b];
  const size_t kept = static_cast<size_t>(s.block_kept[b].load(std::memory_order_relaxed));
  if (kept == 0) return;
  const uint8_t* mk = s.mask + r0;
  const compact::CompactColumns& k = *s.keep;
  // a block's kept values are compacted in L1/L2, then written out with streaming
  // stores: the output lines are never read for ownership
  thread_local std::vector<char> staging;
  if (s.stream_out && staging.size() < s.block * 8) staging.resize(s.block * 8);
  for (int c = 0; c < k.n_columns; ++c) {
    const size_t w = static_cast<size_t>(k.itemsize[c]);
    char* out = static_cast<char*>(k.out[c]) + at * w;
    const char* in = static_cast<const char*>(k.in[c]) + r0 * w;
    if (s.stream_out) {
      compact::compact_block(mk, m, kept, in, staging.data(), k.itemsize[c]);
      compact::copy_streaming(out, staging.data(), kept * w);
    } else {
      compact::compact_block(mk, m, kept, in, out, k.itemsize[c]);
    }
  }
  if (s.positions) {
    if (s.stream_out) {
      compact::compact_block_positions(mk, m, kept, s.base + int64_t(r0),
                                       reinterpret_cast<int64_t*>(staging.data()));
      compact::copy_streaming(s.positions + at, staging.data(), kept * 8);
    } else {
      compact::compact_block_positions(mk, m, kept, s.base + int64_t(r0), s.positions + at);
    }
  }
}

// One worker's blocks whose offsets were not known when their masks were done, oldest
// first; they are compacted as soon as the frontier passes them (usually after the
// worker's next block, while their columns are still in L2/L3).
constexpr int kPending = 4;
struct FilterWorker {
  FilterPass* s;
  size_t pending[kPending];
  int n_pending = 0;
};

bool filter_next(void* ctx, size_t* r0, size_t* m) {
  FilterPass* s = static_cast<FilterWorker*>(ctx)->s;
  const size_t b = s->next.fetch_add(1);
  if (b >= s->n_blocks) return false;
  *r0 = b * s->block;
  *m = std::min(s->block, s->n - *r0);
  return true;
}

// Waits up to ~20 us (spinning, never yielding: under load a yield can cost a whole
// time slice) for the frontier to pass block b.
bool wait_frontier(const FilterPass& s, size_t b) {
  if (s.frontier.load(std::memory_order_acquire) > b) return true;
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
  for (;;) {
    for (int t = 0; t < 64; ++t) {
#if defined(__x86_64__)
      _mm_pause();
#endif
      if (s.frontier.load(std::memory_order_acquire) > b) return true;
    }
    if (std::chrono::steady_clock::now() >= until) return false;
  }
}

// Compacts the worker's pending blocks that the frontier has passed; with `drain`,
// waits a little for the others and leaves those still not ready for after the pass.
void flush_pending(FilterWorker& w, bool drain) {
  FilterPass& s = *w.s;
  int kept = 0;
  for (int i = 0; i < w.n_pending; ++i) {
    const size_t b = w.pending[i];
    if (s.frontier.load(std::memory_order_acquire) > b || (drain && wait_frontier(s, b)))
      compact_block_rows(s, b);
    else if (drain)
      s.deferred[b] = 1;
    else
      w.pending[kept++] = b;
  }
  w.n_pending = kept;
}

void filter_done(void* ctx, size_t r0, size_t m) {
  FilterWorker& w = *static_cast<FilterWorker*>(ctx);
  FilterPass* s = w.s;
  const size_t b = r0 / s->block;
  const uint8_t* mk = s->mask + r0;
  uint32_t kept = 0;
  for (size_t i = 0; i < m; ++i) kept += mk[i] != 0;
  s->block_kept[b].store(kept, std::memory_order_release);
  {
    std::lock_guard<std::mutex> g(s->lock);
    size_t f = s->frontier.load(std::memory_order_relaxed);
    for (; f < s->n_blocks; ++f) {
      const int64_t c = s->block_kept[f].load(std::memory_order_acquire);
      if (c < 0) break;
      s->offset[f] = s->running;
      s->running += static_cast<size_t>(c);
    }
    s->frontier.store(f, std::memory_order_release);
  }
  // The blocks before this one are usually done or a few microseconds from done on
  // the other threads; a block whose offset is not known yet waits for this worker's
  // next blocks, and past kPending - 1 of them for the end of the pass (a thread the
  // host has descheduled must not stall the others, and spinning would take a core
  // from it on a loaded machine).
  w.pending[w.n_pending++] = b;
  flush_pending(w, false);
  if (w.n_pending == kPending) {  // another thread is far behind: never wait for it
    s->deferred[w.pending[0]] = 1;
    std::copy(w.pending + 1, w.pending + kPending, w.pending);
    --w.n_pending;
  }
}

}  // namespace

size_t rules_filter(const RuleProgram& p, const RuleData& d, size_t n, uint8_t* mask,
                    int64_t* counts, const compact::CompactColumns& keep, int64_t* positions,
                    int64_t base, int num_threads) {
  for (int c = 0; c < keep.n_columns; ++c) {
    const int w = keep.itemsize[c];
    if (w != 1 && w != 2 && w != 4 && w != 8)
      throw std::invalid_argument("rules_filter: itemsize must be 1, 2, 4 or 8");
  }
  std::fill_n(counts, p.n_rules, int64_t{0});
  if (n == 0) return 0;
  FilterPass s;
  s.keep = &keep;
  s.positions = positions;
  s.base = base;
  s.mask = mask;
  s.n = n;
  s.block = kBlock;
  s.n_blocks = (n + s.block - 1) / s.block;
  size_t row_bytes = s.positions ? 8 : 0;
  for (int c = 0; c < keep.n_columns; ++c) row_bytes += static_cast<size_t>(keep.itemsize[c]);
  s.stream_out = n * row_bytes >= kStreamOutBytes;
  s.block_kept.reset(new std::atomic<int64_t>[s.n_blocks]);
  for (size_t b = 0; b < s.n_blocks; ++b) s.block_kept[b].store(-1, std::memory_order_relaxed);
  s.offset.assign(s.n_blocks, 0);
  s.deferred.assign(s.n_blocks, 0);
  const std::vector<Ins> lowered = lower(p);
  const size_t workers =
      std::min<size_t>(s.n_blocks, static_cast<size_t>(std::max(1, num_threads)));
  std::mutex count_lock;
  // one piece per worker; each worker takes blocks from s.next until none are left
  parallel_for(workers, static_cast<int>(workers), 1, [&](size_t w0, size_t w1) {
    for (size_t w = w0; w < w1; ++w) {
      std::vector<int64_t> local(std::max(p.n_rules, 1), 0);
      FilterWorker worker{&s, {}, 0};
      const BlockFeed feed{filter_next, filter_done, &worker, std::min(s.block, n)};
      run_blocks(p, lowered, d, feed, mask, local.data());
      flush_pending(worker, true);
      compact::streaming_fence();
      std::lock_guard<std::mutex> g(count_lock);
      for (int k = 0; k < p.n_rules; ++k) counts[k] += local[k];
    }
  });
  std::vector<size_t> late;
  for (size_t b = 0; b < s.n_blocks; ++b)
    if (s.deferred[b]) late.push_back(b);
  parallel_for(late.size(), num_threads, 4, [&](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) compact_block_rows(s, late[i]);
    compact::streaming_fence();
  });
  return s.running;
}

}  // namespace rules
}  // namespace synthcore
