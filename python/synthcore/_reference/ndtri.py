"""Inverse normal CDF (Wichura AS 241), mirroring ``math/ndtri.hpp``, and the
fdlibm log of ``math/log.hpp``.

``ndtri_lower_f64`` is PPND16 for p in (0, 1/2]; float32 normals are its
results rounded once. Every
expression is evaluated in the same order as the C++ (which is compiled
without FMA contraction), so the results are the same bits.
"""
from __future__ import annotations

import numpy as np

SPLIT1 = 0.425
CONST1 = 0.180625
SPLIT2 = 5.0
CONST2 = 1.6

_A = (3.3871328727963666080e+0, 1.3314166789178437745e+2, 1.9715909503065514427e+3,
      1.3731693765509461125e+4, 4.5921953931549871457e+4, 6.7265770927008700853e+4,
      3.3430575583588128105e+4, 2.5090809287301226727e+3)
_B = (1.0, 4.2313330701600911252e+1, 6.8718700749205790830e+2, 5.3941960214247511077e+3,
      2.1213794301586595867e+4, 3.9307895800092710610e+4, 2.8729085735721942674e+4,
      5.2264952788528545610e+3)
_C = (1.42343711074968357734e+0, 4.63033784615654529590e+0, 5.76949722146069140550e+0,
      3.64784832476320460504e+0, 1.27045825245236838258e+0, 2.41780725177450611770e-1,
      2.27238449892691845833e-2, 7.74545014278341407640e-4)
_D = (1.0, 2.05319162663775882187e+0, 1.67638483018380384940e+0, 6.89767334985100004550e-1,
      1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4,
      1.05075007164441684324e-9)
_E = (6.65790464350110377720e+0, 5.46378491116411436990e+0, 1.78482653991729133580e+0,
      2.96560571828504891230e-1, 2.65321895265761230930e-2, 1.24266094738807843860e-3,
      2.71155556874348757815e-5, 2.01033439929228813265e-7)
_F = (1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2,
      7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7,
      2.04426310338993978564e-15)

_LG = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
       2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
       1.479819860511658591e-01)
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10


def log_positive_normal(x: np.ndarray) -> np.ndarray:
    """fdlibm's log for positive normal doubles, as ``math/log.hpp`` (not np.log)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    bits = x.view(np.uint64)
    k = (bits >> np.uint64(52)).astype(np.int64) - 1023
    m = ((bits & np.uint64(0x000FFFFFFFFFFFFF)) | np.uint64(0x3FF0000000000000)).view(np.float64)
    high = m > 1.4142135623730951
    m = np.where(high, m * 0.5, m)
    k = k + high
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG[1] + w * (_LG[3] + w * _LG[5]))
    t2 = z * (_LG[0] + w * (_LG[2] + w * (_LG[4] + w * _LG[6])))
    r = t2 + t1
    hfsq = 0.5 * f * f
    dk = k.astype(np.float64)
    return dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + dk * _LN2_LO)) - f)


def _horner(coeffs, x):
    acc = np.full_like(x, coeffs[-1])
    for c in coeffs[-2::-1]:
        acc = acc * x + x.dtype.type(c)
    return acc


def is_tail(p: np.ndarray) -> np.ndarray:
    """The central/tail split, taken in float64 on every backend."""
    return (p - 0.5) < -SPLIT1


def ndtri_central_f64(q: np.ndarray) -> np.ndarray:
    r = CONST1 - q * q
    return q * _horner(_A, r) / _horner(_B, r)


def ndtri_tail_f64(r: np.ndarray) -> np.ndarray:
    """-z for r = sqrt(-log(p)), p < 0.075."""
    far = r > SPLIT2
    s_near = r - CONST2
    s_far = r - SPLIT2
    near_v = _horner(_C, s_near) / _horner(_D, s_near)
    far_v = _horner(_E, s_far) / _horner(_F, s_far)
    return np.where(far, far_v, near_v)


def ndtri_lower_f64(p: np.ndarray) -> np.ndarray:
    """z = Phi^{-1}(p) for float64 p in (0, 1/2]."""
    p = np.asarray(p, dtype=np.float64)
    tail = is_tail(p)
    z = ndtri_central_f64(np.maximum(p - 0.5, -SPLIT1))
    if tail.any():
        z[tail] = -ndtri_tail_f64(np.sqrt(-log_positive_normal(p[tail])))
    return z
