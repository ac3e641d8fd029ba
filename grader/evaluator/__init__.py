"""The trusted evaluator: loads the models a kernel produced, safely, and measures them on the
grader's own data, in a process of its own (``python -m grader.evaluator``).

``archive`` (what a model file must be before Keras reads it), ``describe`` (a model's layers,
settings and architecture as plain data), ``metrics`` (the grader's own metric code), ``data``
(held-out reviews, movies, the word index), ``measuring`` (the loop over each task's models),
``__main__`` (the process and its protocol with ``grader.measure``).
"""

from .archive import MAX_MODEL_BYTES, UnsafeModelError, inspect_archive
from .data import (EvalData, decode_review, load_eval_data, misclassified_reviews,
                   reference_generate_movies)
from .describe import architecture, describe_model, first_difference
from .measuring import BASELINE_SEED, PROGRESS, Evaluator, evaluate_artifacts
from .metrics import imdb_metrics, movie_metrics

__all__ = ["MAX_MODEL_BYTES", "UnsafeModelError", "inspect_archive", "EvalData", "decode_review",
           "load_eval_data", "misclassified_reviews", "reference_generate_movies",
           "architecture", "describe_model", "first_difference", "BASELINE_SEED", "PROGRESS",
           "Evaluator", "evaluate_artifacts", "imdb_metrics", "movie_metrics"]
