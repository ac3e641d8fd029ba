"""The registry of checks the rubric can name: ``name -> CheckEntry``, built here in code."""

from __future__ import annotations

from types import MappingProxyType

from .base import CheckEntry, Outcome, TaskContext, option
from .history import check_history, check_learns, validate_epochs, validate_ratio
from .manual import check_manual
from .metrics import check_accuracy, validate_threshold
from .movies import check_movie_prediction, check_movies
from .structure import (check_builder, check_compile, check_layers, check_output_shape,
                        check_param_count, validate_layer_spec)

__all__ = ["REGISTRY", "CheckEntry", "Outcome", "TaskContext"]

REGISTRY = MappingProxyType({entry.name: entry for entry in (
    CheckEntry("builder", check_builder),
    CheckEntry("layers", check_layers, {"expect": validate_layer_spec}, frozenset({"expect"})),
    CheckEntry("param_count", check_param_count, {"expect": option("int")},
               frozenset({"expect"})),
    CheckEntry("output_shape", check_output_shape, {"expect": option("shape")},
               frozenset({"expect"})),
    CheckEntry("compile", check_compile, {"loss": option("str"), "metrics": option("str_list")}),
    # what the kernel alone reports: shown, never scored
    CheckEntry("history", check_history, {"epochs": validate_epochs, "keys": option("str_list")},
               scored=False),
    CheckEntry("accuracy", check_accuracy, {"threshold": lambda v: None},
               frozenset({"threshold"}), extra=validate_threshold),
    CheckEntry("learns", check_learns, {"at_most": validate_ratio}),
    CheckEntry("movies", check_movies, scored=False),
    CheckEntry("movie_prediction", check_movie_prediction),
    CheckEntry("manual", check_manual, {"prompt": option("str")}),
)})
