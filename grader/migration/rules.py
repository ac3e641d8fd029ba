"""The migration rules: each Keras 2 (or Python 2) spelling, what changed, and its fix."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy

__all__ = ["Rule", "RULES", "LEGACY_MODULES", "Finding"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_MAX_CODE = 200

#: Keras 2 modules that Keras 3 folded into ``keras.layers``
LEGACY_MODULES = ("convolutional", "convolutional_recurrent", "embeddings", "normalization",
                  "recurrent", "core", "pooling", "merge", "wrappers", "advanced_activations",
                  "noise", "local", "cudnn_recurrent")
_LAYER_MODULE = (rf"(?P<name>(?P<keras>(?:tensorflow\.)?keras)\.layers\."
                 rf"(?:{'|'.join(LEGACY_MODULES)})\b[\w.]*)")
_LEGACY = re.compile(rf"^{_LAYER_MODULE}$")
#: NumPy's aliases of Python types, removed in 1.24 (the ones a NumPy may have brought back,
#: like ``np.bool`` in 2.0, are not flagged: see ``_removed_numpy_aliases``)
_NUMPY_ALIASES = {"float": "float", "int": "int", "bool": "bool", "object": "object",
                  "str": "str", "complex": "complex", "long": "int", "unicode": "str"}
_OPTIMIZERS = {"SGD", "RMSprop", "Adagrad", "Adadelta", "Adam", "Adamax", "Nadam", "AdamW",
               "Ftrl", "Lion", "Adafactor"}
_ACC_KEYS = {"acc": "accuracy", "val_acc": "val_accuracy"}
_INPUT_LAYERS = {"Input", "InputLayer"}
_PREDICT_CLASSES = '(model.predict(X) > 0.5).astype("int32")'


@dataclass(frozen=True)
class Rule:
    id: str
    message: str  # what changed, for a student; ``{name}`` is the offending name
    fix: str  # the Keras 3 spelling, when the line itself cannot be rewritten
    error: tuple[str, str] | None = None  # (exception name, regex of its message) it raises


RULES = {r.id: r for r in (
    Rule("predict_classes", "Keras models have no predict_classes any more (removed in "
         "TensorFlow 2.6): threshold the probabilities that predict returns.", _PREDICT_CLASSES,
         ("AttributeError", r"has no attribute 'predict_classes'")),
    Rule("predict_proba", "Keras models have no predict_proba any more: predict returns the "
         "probabilities.", "model.predict(X)",
         ("AttributeError", r"has no attribute 'predict_proba'")),
    Rule("history_keys", "Keras 3 records the accuracy as 'accuracy' and 'val_accuracy' "
         "(Keras 2.1 said 'acc' and 'val_acc').", "history.history['accuracy']",
         ("KeyError", r"^'(val_)?acc'$")),
    Rule("metrics_acc", "With metrics=['acc'] Keras 3 records the history as 'acc', not the "
         "'accuracy' that the exercise's plots and the grader read.", "metrics=['accuracy']"),
    Rule("numpy_alias", "np.{name} was removed in NumPy 1.24: it was only another name for "
         "Python's {builtin}.", "float",
         ("AttributeError", r"module 'numpy' has no attribute '(?P<name>\w+)'")),
    Rule("legacy_import", "Keras 3 has no module {name}: every layer is in keras.layers.",
         "from keras import layers",
         ("ModuleNotFoundError", rf"No module named '{_LAYER_MODULE}'")),
    Rule("embedding_input_length", "Keras 3 ignores Embedding's input_length (with a warning), "
         "so the model is not built until it sees data and summary() shows no shapes or "
         "parameters: start the model with keras.Input(shape=(500,)) instead.",
         "model.add(keras.Input(shape=(max_review_length,)))\n"
         "model.add(Embedding(top_words, embedding_vecor_length))"),
    Rule("input_shape", "Keras 3 takes the input shape from a keras.Input first layer; "
         "{name}= on a layer still works, with a warning.",
         "model.add(keras.Input(shape=(None, 40, 40, 1)))"),
    Rule("optimizer_lr", "Keras 3 optimizers take learning_rate=; lr= is refused with a "
         "ValueError.", "keras.optimizers.Adam(learning_rate=0.001)",
         ("ValueError", r"Argument\(s\) not recognized: \{'lr'")),
    Rule("adadelta", "Adadelta's default learning rate is now 0.001 (Keras 2.1 used 1.0): with "
         "optimizer='adadelta' the ConvLSTM barely trains.",
         "optimizer=keras.optimizers.Adadelta(learning_rate=1.0)"),
    Rule("print_statement", "This is a Python 2 print statement: in Python 3 print is a "
         "function, and a cell with a print statement does not run at all (SyntaxError).",
         "print(...)", ("SyntaxError", r"Missing parentheses in call to 'print'")),
)}


@dataclass
class Finding:
    """One rule matched in one place of a source (lines are 1-based, edits are per character)."""

    rule: str
    line: int
    end_line: int
    edits: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, text) on line
    fix: str | None = None  # the whole Keras 3 statement, when editing the line is not enough
    name: str = ""  # the offending name, for the message

    def merge(self, other: "Finding") -> None:
        self.end_line = max(self.end_line, other.end_line)
        self.edits += [e for e in other.edits if e not in self.edits]
        self.fix = self.fix or other.fix


def _removed_numpy_aliases() -> dict[str, str]:
    # vars(), not hasattr(): NumPy's module __getattr__ warns about the names it removed
    present = vars(numpy)
    return {k: v for k, v in _NUMPY_ALIASES.items() if k not in present}
