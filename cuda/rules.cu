// CUDA rule evaluation (synthcore/rules.hpp): each thread runs the whole program for
// its rows, with its registers in local memory as raw 64-bit words. Every thread of
// a warp walks the same instructions, so there is no divergence but the data's own
// selects; violation counts go through a warp ballot and one atomic per warp and
// rule. The per-value functions are those of the CPU evaluator (rules.hpp).
#include "launch.cuh"
#include "rules.cuh"

#include <cuda_runtime.h>

#include "synthcore/rules.hpp"

namespace synthcore::cuda {
namespace {

using namespace synthcore::rules;

__device__ __forceinline__ double as_f(uint64_t w) { return __longlong_as_double(static_cast<long long>(w)); }
__device__ __forceinline__ uint64_t of_f(double x) { return static_cast<uint64_t>(__double_as_longlong(x)); }
__device__ __forceinline__ int64_t as_i(uint64_t w) { return static_cast<int64_t>(w); }
__device__ __forceinline__ uint64_t of_i(int64_t x) { return static_cast<uint64_t>(x); }

__global__ void rules_kernel(const int32_t* __restrict__ code, int n_instr,
                             const double* __restrict__ cf, const int64_t* __restrict__ ci,
                             const void* const* __restrict__ columns,
                             void* const* __restrict__ outputs, size_t n,
                             uint8_t* __restrict__ mask, unsigned long long* counts) {
  uint64_t reg[kRulesMaxRegisters];
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  // the loop bound is the same for the whole warp, so ballots see every lane
  const size_t start = static_cast<size_t>(blockIdx.x) * blockDim.x;
  for (size_t base = start; base < n; base += stride) {
    const size_t row = base + threadIdx.x;
    const bool active = row < n;
    const size_t r = active ? row : n - 1;
    uint8_t ok = 1;
    for (int pc = 0; pc < n_instr; ++pc) {
      const int32_t* ins = code + 5 * pc;
      const int op = ins[0], dst = ins[1], a = ins[2], b = ins[3], c = ins[4];
      const uint64_t A = reg[a & (kRulesMaxRegisters - 1)];
      const uint64_t B = reg[b & (kRulesMaxRegisters - 1)];
      uint64_t out = 0;
      switch (op) {
        case LOAD_F64: out = of_f(static_cast<const double*>(columns[b])[r]); break;
        case LOAD_I64: out = of_i(static_cast<const int64_t*>(columns[b])[r]); break;
        case LOAD_I32: out = of_i(static_cast<const int32_t*>(columns[b])[r]); break;
        case LOAD_B: out = static_cast<const uint8_t*>(columns[b])[r]; break;
        case CONST_F: out = of_f(cf[b]); break;
        case CONST_I: out = of_i(ci[b]); break;
        case CONST_B: out = static_cast<uint64_t>(b); break;
        case I2F: out = of_f(i2f(as_i(A))); break;
        case ADD_F: out = of_f(__dadd_rn(as_f(A), as_f(B))); break;
        case SUB_F: out = of_f(__dsub_rn(as_f(A), as_f(B))); break;
        case MUL_F: out = of_f(__dmul_rn(as_f(A), as_f(B))); break;
        case DIV_F: out = of_f(__ddiv_rn(as_f(A), as_f(B))); break;
        case MOD_F: out = of_f(f_mod(as_f(A), as_f(B))); break;
        case MIN_F: out = of_f(f_min(as_f(A), as_f(B))); break;
        case MAX_F: out = of_f(f_max(as_f(A), as_f(B))); break;
        case NEG_F: out = of_f(-as_f(A)); break;
        case ABS_F: out = of_f(fabs(as_f(A))); break;
        case FLOOR_F: out = of_f(floor(as_f(A))); break;
        case CEIL_F: out = of_f(ceil(as_f(A))); break;
        case RINT_F: out = of_f(rint(as_f(A))); break;
        case ADD_I: out = of_i(i_add(as_i(A), as_i(B))); break;
        case SUB_I: out = of_i(i_sub(as_i(A), as_i(B))); break;
        case MUL_I: out = of_i(i_mul(as_i(A), as_i(B))); break;
        case MOD_I: out = of_i(i_mod(as_i(A), as_i(B))); break;
        case MIN_I: out = of_i(i_min(as_i(A), as_i(B))); break;
        case MAX_I: out = of_i(i_max(as_i(A), as_i(B))); break;
        case NEG_I: out = of_i(i_neg(as_i(A))); break;
        case ABS_I: out = of_i(i_abs(as_i(A))); break;
#define SC_FCMP(NAME, cmp) \
  case NAME: out = cmp3(as_f(A) cmp as_f(B), f_null(as_f(A)) | f_null(as_f(B))); break;
#define SC_ICMP(NAME, cmp) \
  case NAME: out = cmp3(as_i(A) cmp as_i(B), i_null2(as_i(A), as_i(B))); break;
        SC_FCMP(EQ_F, ==) SC_FCMP(NE_F, !=) SC_FCMP(LT_F, <) SC_FCMP(LE_F, <=)
        SC_FCMP(GT_F, >) SC_FCMP(GE_F, >=)
        SC_ICMP(EQ_I, ==) SC_ICMP(NE_I, !=) SC_ICMP(LT_I, <) SC_ICMP(LE_I, <=)
        SC_ICMP(GT_I, >) SC_ICMP(GE_I, >=)
#undef SC_FCMP
#undef SC_ICMP
        case EQ_B: out = b_eq(uint8_t(A), uint8_t(B)); break;
        case NE_B: out = b_ne(uint8_t(A), uint8_t(B)); break;
        case AND: out = b_and(uint8_t(A), uint8_t(B)); break;
        case OR: out = b_or(uint8_t(A), uint8_t(B)); break;
        case NOT: out = uint8_t(2 - uint8_t(A)); break;
        case ISNULL_F: out = f_null(as_f(A)) ? 2 : 0; break;
        case ISNULL_I: out = as_i(A) == kIntNull ? 2 : 0; break;
        case ISNULL_B: out = uint8_t(A) == 1 ? 2 : 0; break;
        case ISNULL_C: out = as_i(A) < 0 ? 2 : 0; break;
        case IN_F: {
          bool hit = false;
          for (int k = 0; k < c; ++k) hit |= as_f(A) == cf[b + k];
          out = cmp3(hit, f_null(as_f(A)));
          break;
        }
        case IN_I: {
          bool hit = false;
          for (int k = 0; k < c; ++k) hit |= as_i(A) == ci[b + k];
          out = cmp3(hit, as_i(A) == kIntNull);
          break;
        }
        case LUT_B: case LUT_I: case LUT_C: {
          const int64_t x = as_i(A);
          const int64_t fill = op == LUT_B ? 1 : (op == LUT_I ? kIntNull : -1);
          out = of_i((x < 0) | (x >= c) ? fill : ci[b + x]);
          break;
        }
        case SEL_8: case SEL_B:
          out = uint8_t(A) == 2 ? B : reg[c & (kRulesMaxRegisters - 1)];
          break;
        case RULE: {
          const bool violated = active && uint8_t(A) == 0;
          ok &= !violated;
          const unsigned votes = __ballot_sync(0xffffffffu, violated);
          if ((threadIdx.x & 31) == 0 && votes)
            atomicAdd(counts + c, static_cast<unsigned long long>(__popc(votes)));
          continue;
        }
        case STORE_8:
          if (active) static_cast<uint64_t*>(outputs[c])[row] = A;
          continue;
        case STORE_B:
          if (active) static_cast<uint8_t*>(outputs[c])[row] = uint8_t(A);
          continue;
        default: continue;
      }
      reg[dst & (kRulesMaxRegisters - 1)] = out;
    }
    if (active) mask[row] = ok;
  }
}

}  // namespace

void rules_evaluate(uintptr_t code, size_t n_instr, uintptr_t const_f64, uintptr_t const_i64,
                    uintptr_t columns, uintptr_t outputs, size_t n, uintptr_t mask,
                    uintptr_t counts, uintptr_t cuda_stream) {
  if (n == 0) return;
  constexpr int kThreads = 256;
  rules_kernel<<<grid_for(n, kThreads), kThreads, 0,
                 reinterpret_cast<cudaStream_t>(cuda_stream)>>>(
      reinterpret_cast<const int32_t*>(code), static_cast<int>(n_instr),
      reinterpret_cast<const double*>(const_f64), reinterpret_cast<const int64_t*>(const_i64),
      reinterpret_cast<const void* const*>(columns), reinterpret_cast<void* const*>(outputs), n,
      reinterpret_cast<uint8_t*>(mask), reinterpret_cast<unsigned long long*>(counts));
  check_launch("rules_evaluate");
}

}  // namespace synthcore::cuda
