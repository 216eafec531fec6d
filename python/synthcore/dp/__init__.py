"""Differential privacy: the secure generator (ChaCha20), calibration and accounting.

- ``SecureGenerator`` / ``insecure_generator_for_tests``: ChaCha20 keystream words
  for DP noise (synthcore/dp/_generator.py).
- ``accounting``: noise calibration (Laplace, classical and analytic Gaussian, zCDP and
  the tight CKS20 conversions) and the ``Accountant`` that refuses a release that
  would overspend (synthcore/dp/accounting.py).

- Mechanisms over whole arrays (synthcore/dp/mechanisms.py), each returning a
  ``DPRelease`` (values, cost, scale): ``discrete_laplace`` and ``discrete_gaussian``
  (integers, exact up to a stated total variation charged as delta), ``laplace`` and
  ``gaussian`` (floats, on an integer grid: safe against floating-point attacks),
  ``randomized_response`` (category codes) and ``noisy_max`` (permute-and-flip).

- ``DPGaussianCopula``: a Gaussian copula fitted from noisy histograms and a noisy
  Kendall statistic (synthcore/dp/copula.py).
"""
from . import accounting
from ._generator import (
    InsecureTestGenerator,
    SecureGenerator,
    insecure_generator_for_tests,
)
from .accounting import Accountant, BudgetExceededError
from .mechanisms import (
    DPRelease,
    discrete_gaussian,
    discrete_laplace,
    gaussian,
    laplace,
    noisy_max,
    randomized_response,
)
from .copula import DPGaussianCopula

__all__ = ["Accountant", "BudgetExceededError", "DPGaussianCopula", "DPRelease",
           "InsecureTestGenerator", "SecureGenerator", "accounting", "discrete_gaussian",
           "discrete_laplace", "gaussian", "insecure_generator_for_tests", "laplace",
           "noisy_max", "randomized_response"]
