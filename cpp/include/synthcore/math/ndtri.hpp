// Inverse of the standard normal CDF for p in (0, 1/2], as pieces that vector
// code can evaluate separately (central region, then the tails), plus a scalar
// whole for device code. Wichura, Algorithm AS 241 (Appl. Statist. 1988),
// PPND16: about 1e-16 relative; float32 normals are these doubles, rounded.
// Mirrored by python/synthcore/_reference/ndtri.py. Code that must give the
// same bits on every backend is compiled without FMA contraction (see
// CMakeLists.txt): each operation here is then one IEEE rounding.
#pragma once
#include <cmath>

#include "synthcore/hd.hpp"
#include "synthcore/math/log.hpp"

namespace synthcore::math {

// q = p - 1/2; the central region is |q| <= 0.425.
constexpr double kNdtriSplit1 = 0.425;
constexpr double kNdtriConst1 = 0.180625;  // 0.425^2
constexpr double kNdtriSplit2 = 5.0;
constexpr double kNdtriConst2 = 1.6;

// PPND16 central region: returns z for q with |q| <= 0.425.
SC_HD double ndtri_central_f64(double q) {
  const double r = kNdtriConst1 - q * q;
  const double num =
      ((((((2.5090809287301226727e+3 * r + 3.3430575583588128105e+4) * r +
           6.7265770927008700853e+4) * r + 4.5921953931549871457e+4) * r +
         1.3731693765509461125e+4) * r + 1.9715909503065514427e+3) * r +
       1.3314166789178437745e+2) * r + 3.3871328727963666080e+0;
  const double den =
      ((((((5.2264952788528545610e+3 * r + 2.8729085735721942674e+4) * r +
           3.9307895800092710610e+4) * r + 2.1213794301586595867e+4) * r +
         5.3941960214247511077e+3) * r + 6.8718700749205790830e+2) * r +
       4.2313330701600911252e+1) * r + 1.0;
  return q * num / den;
}

// PPND16 tails, r = sqrt(-log(p)) for p < 0.075; each returns -z (positive).
// Near tail: r <= 5 (p >= 1.4e-11).
SC_HD double ndtri_tail_near_f64(double r) {
  const double s = r - kNdtriConst2;
  const double num =
      ((((((7.74545014278341407640e-4 * s + 2.27238449892691845833e-2) * s +
           2.41780725177450611770e-1) * s + 1.27045825245236838258e+0) * s +
         3.64784832476320460504e+0) * s + 5.76949722146069140550e+0) * s +
       4.63033784615654529590e+0) * s + 1.42343711074968357734e+0;
  const double den =
      ((((((1.05075007164441684324e-9 * s + 5.47593808499534494600e-4) * s +
           1.51986665636164571966e-2) * s + 1.48103976427480074590e-1) * s +
         6.89767334985100004550e-1) * s + 1.67638483018380384940e+0) * s +
       2.05319162663775882187e+0) * s + 1.0;
  return num / den;
}

// Far tail: r > 5.
SC_HD double ndtri_tail_far_f64(double r) {
  const double s = r - kNdtriSplit2;
  const double num =
      ((((((2.01033439929228813265e-7 * s + 2.71155556874348757815e-5) * s +
           1.24266094738807843860e-3) * s + 2.65321895265761230930e-2) * s +
         2.96560571828504891230e-1) * s + 1.78482653991729133580e+0) * s +
       5.46378491116411436990e+0) * s + 6.65790464350110377720e+0;
  const double den =
      ((((((2.04426310338993978564e-15 * s + 1.42151175831644588870e-7) * s +
           1.84631831751005468180e-5) * s + 7.86869131145613259100e-4) * s +
         1.48753612908506148525e-2) * s + 1.36929880922735805310e-1) * s +
       5.99832206555887937690e-1) * s + 1.0;
  return num / den;
}

SC_HD double ndtri_tail_f64(double r) {
  // A branch almost never taken (the far tail has probability 2.8e-11); vector
  // code calls ndtri_tail_near_f64 for all tail lanes and patches far ones.
  if (r > kNdtriSplit2) return ndtri_tail_far_f64(r);
  return ndtri_tail_near_f64(r);
}

// Whole inverse CDF for p in (0, 1/2] (scalar, branching): used by device code.
SC_HD double ndtri_lower_f64(double p) {
  const double q = p - 0.5;
  if (q >= -kNdtriSplit1) return ndtri_central_f64(q);
  return -ndtri_tail_f64(std::sqrt(-log_positive_normal(p)));
}

}  // namespace synthcore::math
