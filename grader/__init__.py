"""ex8 grader: grades "Exercise 8 - Recurrent Neural Networks" submissions honestly."""

from .errors import (DataSourceError, ExecutionError, GradingError, InfrastructureError,
                     InputError, RubricError)
from .kernel.notebook_check import check

__all__ = ["GradingError", "InputError", "RubricError", "DataSourceError", "ExecutionError",
           "InfrastructureError", "check", "__version__"]

__version__ = "0.1.0"
