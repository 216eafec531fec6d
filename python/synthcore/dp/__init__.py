"""Differential privacy: the secure generator (ChaCha20), calibration and accounting.

Noise mechanisms are not in this release yet; see the project's issue on DP.
"""
from ._generator import (
    InsecureTestGenerator,
    SecureGenerator,
    insecure_generator_for_tests,
)

__all__ = ["InsecureTestGenerator", "SecureGenerator", "insecure_generator_for_tests"]
