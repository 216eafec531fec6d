// Natural log of a positive, finite, normal double: fdlibm's e_log.c reduction
// and polynomial (< 1 ulp), written without tables or branches so that
// compilers vectorise it. The CPU, CUDA and NumPy (_reference/ndtri.py)
// backends all use this one function instead of their own libm log, which is
// what makes float results bit-identical across backends.
#pragma once
#include <cstdint>
#include <cstring>

#include "synthcore/hd.hpp"

namespace synthcore::math {

SC_HD uint64_t double_bits(double x) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(x));
#else
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
#endif
}

SC_HD double bits_double(uint64_t bits) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(bits));
#else
  double x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
#endif
}

// Always inlined on the host: as a call it would stop the caller's loop from vectorising.
#if defined(__GNUC__) && !defined(__CUDACC__)
__attribute__((always_inline))
#endif
SC_HD double log_positive_normal(double x) {
  const uint64_t bits = double_bits(x);
  int32_t k = static_cast<int32_t>(bits >> 52) - 1023;
  double m = bits_double((bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);  // [1, 2)
  const bool high = m > 1.4142135623730951;
  m = high ? m * 0.5 : m;  // [sqrt(2)/2, sqrt(2))
  k += high ? 1 : 0;
  const double f = m - 1.0;  // exact (Sterbenz)
  const double s = f / (2.0 + f);
  const double z = s * s;
  const double w = z * z;
  const double t1 = w * (3.999999999940941908e-01 +
                         w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
  const double t2 = z * (6.666666666666735130e-01 +
                         w * (2.857142874366239149e-01 +
                              w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
  const double R = t2 + t1;
  const double hfsq = 0.5 * f * f;
  const double dk = static_cast<double>(k);
  return dk * 6.93147180369123816490e-01 -
         ((hfsq - (s * (hfsq + R) + dk * 1.90821492927058770002e-10)) - f);
}

}  // namespace synthcore::math
