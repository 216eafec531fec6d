"""Differential privacy: the secure generator (ChaCha20), calibration and accounting.

- ``SecureGenerator`` / ``insecure_generator_for_tests``: ChaCha20 keystream words
  for DP noise (synthcore/dp/_generator.py).
- ``accounting``: noise calibration (Laplace, classical and analytic Gaussian, zCDP and
  the tight CKS20 conversions) and the ``Accountant`` that refuses a release that
  would overspend (synthcore/dp/accounting.py).

The noise mechanisms themselves (exact discrete Laplace/Gaussian, grid-safe float
noise, randomized response, noisy max) and the DP copula are not in this release.
"""
from . import accounting
from ._generator import (
    InsecureTestGenerator,
    SecureGenerator,
    insecure_generator_for_tests,
)
from .accounting import Accountant, BudgetExceededError

__all__ = ["Accountant", "BudgetExceededError", "InsecureTestGenerator", "SecureGenerator",
           "accounting", "insecure_generator_for_tests"]
