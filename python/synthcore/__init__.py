"""synthcore: a synthetic-data generation core.

Hot paths run in C++ (``synthcore._core``) and CUDA (``synthcore._cuda``)
with the same API falling back to pure NumPy. See ``synthcore.info()`` for
what this install can do.
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import copula_kernels, gan, random
from ._backend import (
    BackendUnavailableError,
    available_backends,
    built_backends,
    get_backend,
    get_num_threads,
    set_backend,
    set_num_threads,
    use_backend,
)
from ._info import info
from ._buffers import release as release_buffers
from ._conditional import ImpossibleConditionError
from .copula import GaussianCopula, load
from .rules import RuleError, Rules, RuleSyntaxError, RuleTypeError
from ._rules_sampling import RuleAcceptanceError
from .generation import (Spec, SpecError, TableSpec, generate, generate_at, generate_tables,
                         load_spec)

__all__ = [
    "__version__",
    "BackendUnavailableError",
    "DPGaussianCopula",
    "GaussianCopula",
    "RuleAcceptanceError",
    "RuleError",
    "RuleSyntaxError",
    "RuleTypeError",
    "Rules",
    "Spec",
    "SpecError",
    "TableSpec",
    "generate",
    "generate_at",
    "generate_tables",
    "load_spec",
    "ImpossibleConditionError",
    "available_backends",
    "copula_kernels",
    "gan",
    "built_backends",
    "get_backend",
    "get_num_threads",
    "info",
    "load",
    "random",
    "release_buffers",
    "set_backend",
    "set_num_threads",
    "use_backend",
]


def __getattr__(name):
    # synthcore.dp (SciPy's optimizers, the DP tables) loads only when asked for
    if name == "DPGaussianCopula":
        from .dp.copula import DPGaussianCopula
        return DPGaussianCopula
    raise AttributeError(f"module 'synthcore' has no attribute {name!r}")
