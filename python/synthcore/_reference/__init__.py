"""Pure-NumPy implementation of every synthcore kernel.

It is the fallback when the native modules are missing and the oracle the
tests compare the C++ and CUDA backends against. Each module mirrors one op:
``philox`` and ``random`` mirror ``cpp/include/synthcore/{rng/philox,random}.hpp``,
``ndtri`` mirrors ``cpp/include/synthcore/math/ndtri.hpp``.
"""
