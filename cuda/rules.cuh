// CUDA evaluator for rule programs (synthcore/rules.hpp): one kernel, one thread per
// row, every rule and derived column of the program at once. Pointers are device
// pointers; asynchronous on cuda_stream.
#pragma once
#include <cstddef>
#include <cstdint>

namespace synthcore::cuda {

constexpr int kRulesMaxRegisters = 64;

// code: int32 [n_instr * 5]; columns / outputs: device arrays of device pointers;
// mask: uint8 [n]; counts: int64 [n_rules], zeroed by the caller, added to here.
void rules_evaluate(uintptr_t code, size_t n_instr, uintptr_t const_f64, uintptr_t const_i64,
                    uintptr_t columns, uintptr_t outputs, size_t n, uintptr_t mask,
                    uintptr_t counts, uintptr_t cuda_stream);

}  // namespace synthcore::cuda
