"""Differential privacy: the secure generator (ChaCha20), calibration and accounting.

- ``SecureGenerator`` / ``insecure_generator_for_tests``: ChaCha20 keystream words
  for DP noise (synthcore/dp/_generator.py).
- ``accounting``: noise calibration (Laplace, classical and analytic Gaussian, zCDP and
  the tight CKS20 conversions) and the ``Accountant`` that refuses a release that
  would overspend (synthcore/dp/accounting.py).

- ``discrete_laplace`` (integer arrays) and ``randomized_response`` (category codes):
  synthcore/dp/mechanisms.py.

- ``DPGaussianCopula``: a Gaussian copula fitted from noisy histograms and a noisy
  Kendall statistic (synthcore/dp/copula.py).

Not in this release yet: the discrete Gaussian, grid-safe float noise and noisy max
(docs/dp.md has the design).
"""
from . import accounting
from ._generator import (
    InsecureTestGenerator,
    SecureGenerator,
    insecure_generator_for_tests,
)
from .accounting import Accountant, BudgetExceededError
from .mechanisms import DPRelease, discrete_laplace, randomized_response
from .copula import DPGaussianCopula

__all__ = ["Accountant", "BudgetExceededError", "DPGaussianCopula", "DPRelease",
           "InsecureTestGenerator",
           "SecureGenerator", "accounting", "discrete_laplace", "insecure_generator_for_tests",
           "randomized_response"]
