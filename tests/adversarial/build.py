"""Write the adversarial corpus: one small notebook per attack, named by its expected outcome.

    python -m tests.adversarial.build           # (re)write the notebooks beside this file
    python -m tests.adversarial.build --check   # exit 1 if a committed notebook is stale

Each notebook is a cut-down student template plus the attack cell(s), so there is nothing to
train and a run is short. Three bases: ``bare`` (the parameters cell only: honest score 0),
``slim`` (imports and the worked example's builder: honest score 1, the rnn parameter count)
and ``trained`` (slim plus the data and the worked example's token training: honest score 3,
the rnn parameter count and history). Attacks print ``ex8-attack: <what>: <outcome>`` lines,
which the tests read to say what each attack met. tests/test_adversarial.py holds what each
one is expected to score and leave behind.

Fixed names the tests set up around the corpus: a classmate's graded folder
``ex8-victim-student`` beside the attack's own output folder (a batch's layout), a TCP listener
on 127.0.0.1:47617 and an abstract Unix socket ``ex8-adversarial`` in the grader's namespaces.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent.parent / "student_template" / "ex8.ipynb"
VICTIM = "ex8-victim-student"
LISTEN_PORT = 47617
ABSTRACT_SOCKET = "ex8-adversarial"

#: reports an attempt's outcome without letting an exception stop the cell
ATTEMPT = '''def attempt(what, action):
    try:
        result = action()
        print(f"ex8-attack: {what}: done" + (f" ({result!r:.120})" if result is not None else ""))
    except BaseException as exc:  # noqa: BLE001 - the outcome is what we want to see
        print(f"ex8-attack: {what}: {type(exc).__name__}: {str(exc)[:120]}")
'''


@dataclass
class Attack:
    name: str
    base: str
    cells: list[str]
    rnn_builder: str | None = None  # replaces the worked example's builder
    metadata: dict = field(default_factory=dict)  # merged into the notebook's metadata
    tags: list[str] = field(default_factory=list)  # added to every code cell
    #: tasks whose builders (the reference's) come before the attack's cells
    builders: tuple[str, ...] = ()


FORGED_PRINTS = '''# Forged scores: the grader measures, it never reads what a notebook prints.
print("Accuracy: 1.0000")
print("Test accuracy: 100.00%")
print("Score: 74 / 74 points")
print(json.dumps({"score": 74, "tests": [{"name": "everything", "score": 74, "max_score": 74}]}))
'''

FORGED_RESULTS = ATTEMPT + '''
import json, os
forged = json.dumps({"score": 74, "tests": [{"name": "everything", "score": 74,
                                             "max_score": 74, "status": "passed"}]})
attempt("write results.json in the work folder", lambda: open("results.json", "w").write(forged))
for up in ("..", "../.."):
    attempt(f"write {up}/results.json", lambda up=up: open(f"{up}/results.json", "w").write(forged))
    attempt(f"plant a link {up}/results.json", lambda up=up: os.symlink("work/results.json",
                                                                        f"{up}/results.json"))
attempt("plant a link result.json", lambda: os.symlink("../result.json", "result.json"))
attempt("plant a link feedback.html", lambda: os.symlink("../feedback.html", "feedback.html"))
'''

LINKED_ARTIFACT_FOLDER = f'''# The harvest's folder becomes a link to a classmate's harvest (beside ours in a batch).
import os
_makedirs = os.makedirs

def makedirs(name, *args, **kwargs):
    if os.path.basename(str(name)).startswith("artifacts-"):
        os.symlink("../../{VICTIM}/work/artifacts", name)
        print("ex8-attack: artifact folder planted as a link to ../../{VICTIM}/work/artifacts")
        return None
    return _makedirs(name, *args, **kwargs)

os.makedirs = makedirs
'''

LINKED_MODEL_FILE = f'''# Every model file the harvest saves becomes a link to a classmate's model.
import os
import keras

def save(self, filepath, *args, **kwargs):
    target = "../../../{VICTIM}/work/artifacts/" + os.path.basename(str(filepath))
    os.symlink(target, filepath)
    print(f"ex8-attack: {{filepath}} planted as a link to {{target}}")

keras.Model.save = save
'''

MONKEYPATCHED_METRICS = '''# Patched metrics in the kernel: printed numbers lie, measured ones cannot.
import numpy as np
import keras
import sklearn.metrics

keras.Model.evaluate = lambda self, *args, **kwargs: [0.0, 1.0]
np.mean = lambda *args, **kwargs: 1.0
sklearn.metrics.accuracy_score = lambda *args, **kwargs: 1.0
print(f"Accuracy: {rnn_model.evaluate(X_test, y_test)[1]:.4f}")
print(f"ex8-attack: patched accuracy_score says {sklearn.metrics.accuracy_score(y_test, 1 - y_test)}")
'''

LYING_EQ = '''# Objects equal to everything, standing in for the models, builders and histories.
class AlwaysEqual:
    history = None
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __hash__(self): return 0
    def __float__(self): return 1.0
    def __call__(self, *args, **kwargs): return AlwaysEqual()

build_lstm_model = AlwaysEqual()
lstm_model = AlwaysEqual()
lstm_history = AlwaysEqual()
print("ex8-attack: AlwaysEqual() == 'anything':", AlwaysEqual() == "anything")
'''

SYS_EXIT = '''import sys
print("ex8-attack: calling sys.exit()")
sys.exit("the grading is over")
'''

OS_EXIT = '''import os
print("ex8-attack: calling os._exit(0)", flush=True)
os._exit(0)
'''

KILLS = ATTEMPT + '''
import os, signal
attempt(f"kill the parent (pid {os.getppid()})", lambda: os.kill(os.getppid(), signal.SIGKILL))
killed, refused = [], 0
for entry in os.listdir("/proc"):
    if entry.isdigit() and int(entry) != os.getpid():
        try:
            os.kill(int(entry), signal.SIGKILL)
            killed.append(int(entry))
        except OSError:
            refused += 1
print(f"ex8-attack: kill every visible process: {len(killed)} killed, {refused} refused")
'''

SHOWTRACEBACK = '''# nbgrader PR #1324: a replaced showtraceback hid failing tests.
ip = get_ipython()
ip.showtraceback = lambda *args, **kwargs: None
ip.showsyntaxerror = lambda *args, **kwargs: None
ip._showtraceback = lambda *args, **kwargs: None
print("ex8-attack: showtraceback replaced")
'''

SHOWTRACEBACK_AFTER = '''def build_lstm_model():
    raise NotImplementedError("Task 1 is not done, and the traceback is hidden")

lstm_model = build_lstm_model()
'''

READS_SECRETS = ATTEMPT + '''
import importlib, os

def peek(path):
    with open(path, "rb") as fh:
        return fh.read(200)

for path in ("/etc/shadow", "/etc/passwd", "/root/.bash_history", "/proc/1/environ",
             f"/proc/{os.getppid()}/environ", "/proc/1/cmdline"):
    attempt(f"read {path}", lambda path=path: peek(path))
for name in ("rubrics", "reference", "reference.solution", "tests"):
    attempt(f"import {name}", lambda name=name: importlib.import_module(name).__file__)
found = []
for top, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(top, d) not in ("/proc", "/sys", "/dev", "/usr")]
    found += [os.path.join(top, f) for f in files
              if f.endswith((".yaml", ".ipynb", ".json", "_source.py")) or f == "solution.py"]
    if len(found) > 200:
        break
print(f"ex8-attack: files a rubric or a solution could be in: {len(found)}")
for path in found[:50]:
    attempt(f"read {path}", lambda path=path: peek(path))
print("ex8-attack: environment:", json.dumps(dict(os.environ)))
'''

OTHER_STUDENTS = ATTEMPT + f'''
import glob, os

def peek(path):
    with open(path, "rb") as fh:
        return fh.read(200)

def append(path):
    with open(path, "ab") as fh:
        fh.write(b"tampered by another student")

places = sorted(set(glob.glob("../../**", recursive=True) + glob.glob("/tmp/**", recursive=True)
                    + glob.glob("/work/**/{VICTIM}/**", recursive=True)))
print(f"ex8-attack: paths outside the work folder: {{len(places)}}")
for path in places[:200]:
    if os.path.isfile(path) and not os.path.abspath(path).startswith(os.getcwd()):
        attempt(f"read {{path}}", lambda path=path: peek(path))
        attempt(f"append to {{path}}", lambda path=path: append(path))
for path in ("../../{VICTIM}/secret.txt", "../../{VICTIM}/results.json", "../SENTINEL.txt",
             "../../SENTINEL.txt", "/tmp/ex8-adversarial-escape",
             os.path.expanduser("~/../../root/.bashrc")):
    attempt(f"read {{path}}", lambda path=path: peek(path))
    attempt(f"append to {{path}}", lambda path=path: append(path))
attempt("make ../../{VICTIM}/work/artifacts",
        lambda: os.makedirs("../../{VICTIM}/work/artifacts", exist_ok=True))
'''

SOCKETS = ATTEMPT + f'''
import socket
attempt("TCP to 1.1.1.1:443", lambda: socket.create_connection(("1.1.1.1", 443), timeout=3))
attempt("TCP to the grader's 127.0.0.1:{LISTEN_PORT}",
        lambda: socket.create_connection(("127.0.0.1", {LISTEN_PORT}), timeout=3))
attempt("DNS lookup of pypi.org", lambda: socket.getaddrinfo("pypi.org", 443))
attempt("UDP to 8.8.8.8:53",
        lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("8.8.8.8", 53)))
attempt("abstract Unix socket {ABSTRACT_SOCKET}",
        lambda: socket.socket(socket.AF_UNIX).connect("\\0{ABSTRACT_SOCKET}"))
'''

ALLOCATES = '''import numpy as np
try:
    huge = np.ones(50 * 2**30 // 8)
    print("ex8-attack: one 50 GB array: allocated")
except MemoryError:
    print("ex8-attack: one 50 GB array: MemoryError")
blocks = []
for gigabyte in range(1, 51):
    blocks.append(np.ones(2**30 // 8))
    print(f"ex8-attack: {gigabyte} GB touched", flush=True)
'''

FORK_BOMB = '''import os, time
children = 0
try:
    while True:
        if os.fork() == 0:  # a child that keeps its place: it sleeps until it is killed
            time.sleep(1e6)
            os._exit(0)
        children += 1
except OSError as exc:
    print(f"ex8-attack: fork bomb: {children} children, then {type(exc).__name__}: {exc}")
'''

THREAD_BOMB = '''import threading, time
count = 0
try:
    while True:
        threading.Thread(target=time.sleep, args=(1e6,), daemon=True).start()
        count += 1
except RuntimeError as exc:
    print(f"ex8-attack: thread bomb: {count} threads, then RuntimeError: {exc}")
'''

SLEEPS = '''import time
print("ex8-attack: sleeping for 1e9 s", flush=True)
time.sleep(1e9)
'''

IGNORES_INTERRUPTS = '''import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("ex8-attack: SIGINT ignored, sleeping for 1e9 s", flush=True)
time.sleep(1e9)
'''

FILLS_DISK = '''import os

def fill(path, limit):
    written = 0
    try:
        with open(path, "wb") as fh:
            while written < limit:
                fh.write(b"\\0" * (8 << 20))
                fh.flush()
                written += 8 << 20
        return f"{written >> 20} MB"
    except OSError as exc:
        return f"{written >> 20} MB, then {type(exc).__name__}: {exc.strerror}"

for place in (os.environ["TMPDIR"], os.environ["HOME"], "/dev/shm"):
    print(f"ex8-attack: fill {place}: {fill(os.path.join(place, 'fill.bin'), 1 << 40)}")
    try:
        os.remove(os.path.join(place, "fill.bin"))
    except OSError:
        pass
print(f"ex8-attack: one huge file here: {fill('huge.bin', 1 << 40)}", flush=True)
for n in range(10_000):
    print(f"ex8-attack: file {n} here: {fill(f'fill-{n}.bin', 24 << 20)}", flush=True)
'''

PRINTS_GIGABYTE = '''line = "x" * (1 << 20)
for _ in range(1024):
    print(line)
print("ex8-attack: printed 1 GB")
'''

XSS_OUTPUT = '''from IPython.display import HTML, Javascript, display
print('<script>alert("ex8-xss-output")</script>')
display(HTML('<img src=x onerror=alert("ex8-xss-html")>'))
display(Javascript('alert("ex8-xss-javascript")'))
'''

XSS_NAME = '''# Names the report shows ("found instead"): a builder-like function and a model variable.
globals()['build_<img src=x onerror=alert("ex8-xss-name")>'] = lambda: None
globals()['<script>alert("ex8-xss-model")</script>'] = build_rnn_model()
'''

XSS_EXCEPTION = '''def build_lstm_model():
    raise ValueError('<img src=x onerror=alert("ex8-xss-builder")>')

raise ValueError('<script>alert("ex8-xss-exception")</script><img src=x onerror=alert(1)>')
'''

LAMBDA_BUILDER = '''def build_rnn_model():
    """The worked example, with a Lambda layer: code inside a model file."""
    model = keras.Sequential([
        keras.Input(shape=(MAX_REVIEW_LENGTH,)),
        layers.Embedding(TOP_WORDS, EMBEDDING_DIM),
        layers.SimpleRNN(128),
        layers.Lambda(lambda x: __import__("os").system("touch /tmp/ex8-adversarial-pwned") * 0 + x),
        layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model
'''

FORGED_ARCHIVE = '''# Model.save replaced: the harvest writes an archive whose config calls os.system.
import json, zipfile
import keras

def save(self, filepath, *args, **kwargs):
    layer = {"module": "os", "class_name": "system", "registered_name": "system",
             "config": {"command": "touch /tmp/ex8-adversarial-pwned"}}
    config = {"module": "keras", "class_name": "Sequential",
              "config": {"name": "forged", "layers": [layer]}}
    with zipfile.ZipFile(filepath, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.13.2"}))
    print(f"ex8-attack: forged archive written to {filepath}")

keras.Model.save = save
'''

PLANTS_MODULES = ATTEMPT + '''
import os, pathlib
evil = ("import pathlib, sys\\n"
        "pathlib.Path(__file__).with_name('EVIL_RAN').write_text(repr(sys.argv))\\n"
        "raise SystemExit('an evil module was imported')\\n")
for name in ("numpy.py", "keras.py", "json.py", "sitecustomize.py", "usercustomize.py"):
    attempt(f"write {name} here", lambda name=name: pathlib.Path(name).write_text(evil))
for folder in (".ipython/profile_default/startup",
               os.path.join(os.environ["IPYTHONDIR"], "profile_default", "startup"),
               os.path.expanduser("~/.ipython/profile_default/startup")):
    os.makedirs(folder, exist_ok=True)
    attempt(f"write {folder}/00-evil.py",
            lambda folder=folder: pathlib.Path(folder, "00-evil.py").write_text(evil))
for name in ("../numpy.py", "../../numpy.py"):
    attempt(f"write {name}", lambda name=name: pathlib.Path(name).write_text(evil))
'''

FORGED_HISTORIES = '''# Invented histories for every task: the kernel's word, which earns no point.
class InventedHistory:
    history = {"loss": [0.69, 0.35, 0.12], "accuracy": [0.55, 0.85, 0.97],
               "val_loss": [0.68, 0.33, 0.11], "val_accuracy": [0.56, 0.86, 0.96]}

rnn_history = lstm_history = lstm_dropout_history = cnn_lstm_history = InventedHistory()
convlstm_history = InventedHistory()
print("ex8-attack: five invented histories")
'''

#: the builders are the exercise's; what is kept under the tasks' names is something else
BAG_OF_WORDS = '''import os
from grader.data import load_imdb

# every IMDB file the notebook can see, and every review it can load
files = []
for top, dirs, names in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(top, d) not in ("/proc", "/sys", "/dev", "/usr")]
    files += [os.path.join(top, n) for n in names if "imdb" in n.lower()
              and n.endswith((".npz", ".gz", ".tar", ".json", ".txt", ".npy"))]
print(f"ex8-attack: IMDB files visible: {sorted(files)}")
(x_every, y_every), (x_tests, y_tests) = load_imdb(num_words=TOP_WORDS)
print(f"ex8-attack: loadable reviews: {len(x_every)} train, {len(x_tests)} test")
X_every = keras.utils.pad_sequences(np.concatenate([x_every, x_tests]), maxlen=MAX_REVIEW_LENGTH)
Y_every = np.concatenate([y_every, y_tests])

def bag_of_words():
    model = keras.Sequential([keras.Input(shape=(MAX_REVIEW_LENGTH,)),
                              layers.Embedding(TOP_WORDS, 16), layers.GlobalAveragePooling1D(),
                              layers.Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model

bow = bag_of_words()
bow.fit(X_every, Y_every, epochs=2, batch_size=256, verbose=0)
print(f"ex8-attack: bag of words fitted on {len(Y_every)} reviews, its test reviews included")

class InventedHistory:
    history = {"loss": [0.69, 0.35], "accuracy": [0.55, 0.9], "val_loss": [0.68, 0.33],
               "val_accuracy": [0.56, 0.9]}

lstm_model = lstm_dropout_model = bow
lstm_history = lstm_dropout_history = cnn_lstm_history = InventedHistory()
build_cnn_lstm_model = bag_of_words  # the builder says so too: the task's layers are missing
cnn_lstm_model = bow
'''

UNTRAINED_BONUS = '''# The bonus model straight from its builder, never trained, with an invented falling loss.
convlstm_model = build_convlstm_model()

class InventedHistory:  # a falling loss, one value per epoch the profile asks for
    history = {"loss": np.geomspace(0.69, 0.05, MOVIE_EPOCHS).tolist(),
               "val_loss": np.geomspace(0.69, 0.06, MOVIE_EPOCHS).tolist()}

convlstm_history = InventedHistory()
print("ex8-attack: untrained bonus model, invented history")
'''

#: Task 1's builder returns a model that predicts in more memory than the evaluator has
NEEDS_MEMORY = '''def build_lstm_model():
    """Every review repeated to 150,000 steps: gigabytes per batch when predicting."""
    model = keras.Sequential([keras.Input(shape=(MAX_REVIEW_LENGTH,)), layers.Embedding(
                                  TOP_WORDS, 32), layers.UpSampling1D(150_000 // MAX_REVIEW_LENGTH),
                              layers.GlobalAveragePooling1D(), layers.Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model

lstm_model = build_lstm_model()
lstm_history = lstm_model.fit(X_train[:2], y_train[:2], epochs=1, verbose=0)
'''

#: Task 1's builder returns a model that takes minutes to predict 200 reviews
TOO_SLOW = '''def build_lstm_model():
    """An LSTM over every review repeated to 300,000 steps: a minute or more."""
    model = keras.Sequential([keras.Input(shape=(MAX_REVIEW_LENGTH,)), layers.Embedding(
                                  TOP_WORDS, 1), layers.UpSampling1D(300_000 // MAX_REVIEW_LENGTH),
                              layers.LSTM(64), layers.Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model

lstm_model = build_lstm_model()

class InventedHistory:
    history = {"loss": [0.69]}

lstm_history = InventedHistory()
'''

DEEP_TREE = '''# A folder tree 1,100 deep, with names as long as allowed, in the work folder.
import os
fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
for _ in range(1100):
    os.mkdir("d" * 200, dir_fd=fd)
    child = os.open("d" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = child
os.close(os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
print("ex8-attack: a tree 1,100 folders deep")
'''

ATTACKS = [
    Attack("forged_score_prints_are_flagged", "trained", [FORGED_PRINTS]),
    Attack("forged_results_json_and_links_are_ignored", "slim", [FORGED_RESULTS]),
    Attack("linked_artifact_folder_is_refused", "slim", [LINKED_ARTIFACT_FOLDER]),
    Attack("linked_model_files_are_refused", "slim", [LINKED_MODEL_FILE]),
    Attack("monkeypatched_metrics_are_measured_honestly", "trained", [MONKEYPATCHED_METRICS]),
    Attack("lying_eq_objects_score_nothing", "slim", [LYING_EQ]),
    Attack("sys_exit_is_an_error_and_the_run_goes_on", "slim", [SYS_EXIT]),
    Attack("os_exit_kills_only_the_kernel", "slim", [OS_EXIT]),
    Attack("killing_the_grader_is_refused", "slim", [KILLS]),
    Attack("replaced_showtraceback_still_records_errors", "slim",
           [SHOWTRACEBACK, SHOWTRACEBACK_AFTER]),
    Attack("other_kernel_and_skip_tags_in_metadata_are_ignored", "slim",
           ["print('ex8-attack: a cell tagged skip-execution ran')"],
           metadata={"kernelspec": {"name": "ir", "display_name": "R", "language": "R"},
                     "language_info": {"name": "R"}},
           tags=["skip-execution", "raises-exception", "remove-cell"]),
    Attack("reads_shadow_rubric_and_environment_find_nothing", "slim", [READS_SECRETS]),
    Attack("other_students_files_are_unreachable", "slim", [OTHER_STUDENTS]),
    Attack("sockets_reach_no_network", "slim", [SOCKETS]),
    Attack("allocating_50_gb_is_stopped_by_the_memory_limit", "slim", [ALLOCATES]),
    Attack("fork_bomb_is_contained", "bare", [FORK_BOMB]),
    Attack("thread_bomb_is_contained", "bare", [THREAD_BOMB]),
    Attack("sleeping_forever_is_stopped_by_the_cell_limit", "slim", [SLEEPS]),
    Attack("ignoring_interrupts_is_stopped_by_the_total_limit", "slim", [IGNORES_INTERRUPTS]),
    Attack("filling_the_disk_is_stopped_at_the_quota", "slim", [FILLS_DISK]),
    Attack("printing_a_gigabyte_is_cut", "slim", [PRINTS_GIGABYTE]),
    Attack("xss_in_output_exception_and_names_runs_no_script", "slim",
           [XSS_OUTPUT, XSS_NAME, XSS_EXCEPTION]),
    Attack("lambda_layer_model_is_refused", "slim", [], rnn_builder=LAMBDA_BUILDER),
    Attack("forged_keras_archive_is_refused", "slim", [FORGED_ARCHIVE]),
    Attack("planted_numpy_and_startup_files_are_ignored", "slim", [PLANTS_MODULES]),
    Attack("forged_histories_earn_nothing", "slim", [FORGED_HISTORIES]),
    Attack("a_folder_tree_1100_deep_is_removed_and_grading_again_works", "slim", [DEEP_TREE]),
    Attack("bag_of_words_models_trained_on_every_review_score_no_accuracy", "data",
           [BAG_OF_WORDS], builders=("task1", "task2", "task3", "bonus")),
    Attack("untrained_bonus_model_earns_no_learns_points", "slim", [UNTRAINED_BONUS],
           builders=("bonus",)),
    Attack("model_needing_more_memory_than_the_evaluator_fails_its_task_alone", "trained",
           [NEEDS_MEMORY]),
    Attack("model_too_slow_to_predict_fails_its_task_alone", "trained", [TOO_SLOW]),
]
#: the slim base itself: graded after the attacks, it must score as if nothing had happened
BASELINES = {"honest_slim_base": "slim"}


REFERENCE = HERE.parent.parent / "reference" / "ex8_solution.ipynb"
#: the reference's cells that define each task's builder (and the bonus's movies)
BUILDER_CELLS = {"task1": ("def build_lstm_model",), "task2": ("def build_lstm_dropout_model",),
                 "task3": ("def build_cnn_lstm_model",),
                 "bonus": ("def generate_movies", "def build_convlstm_model")}


def _reference_builders(tasks) -> list[nbformat.NotebookNode]:
    ref = nbformat.read(REFERENCE, as_version=4).cells
    starts = [start for task in tasks for start in BUILDER_CELLS[task]]
    return [nbformat.v4.new_code_cell(next(c.source for c in ref if c.source.startswith(start)))
            for start in starts]


def _template_cells() -> dict[str, nbformat.NotebookNode]:
    nb = nbformat.read(TEMPLATE, as_version=4)
    cells = {}
    for c in nb.cells:
        if "parameters" in c.metadata.get("tags", []):
            cells["parameters"] = c
        elif "data" in c.metadata.get("tags", []):
            cells["data"] = c
        elif c.source.startswith("def build_rnn_model"):
            cells["rnn_builder"] = c
        elif c.source.startswith("rnn_model = build_rnn_model()"):
            cells["rnn_train"] = c
    return cells


def notebook(base: str, attack: Attack | None = None) -> nbformat.NotebookNode:
    """The base's cells from the student template, then the attack's cells."""
    t = _template_cells()
    code = nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                  "name": "python3"}, "language_info": {"name": "python"}}
    nb.cells.append(nbformat.from_dict(dict(t["parameters"])))
    if base in ("slim", "data", "trained"):
        imports = "import json\nimport numpy as np\nimport keras\nfrom keras import layers\n"
        if base in ("data", "trained"):
            imports += "from sklearn.model_selection import train_test_split\n"
        nb.cells.append(code(imports + "\nkeras.utils.set_random_seed(SEED)"))
        if base in ("data", "trained"):
            nb.cells.append(nbformat.from_dict(dict(t["data"])))
        builder = code(attack.rnn_builder) if attack and attack.rnn_builder else \
            nbformat.from_dict(dict(t["rnn_builder"]))
        builder.metadata["ex8"] = {"task": "rnn"}
        nb.cells.append(builder)
        if base == "trained":
            nb.cells.append(nbformat.from_dict(dict(t["rnn_train"])))
    nb.cells.extend(_reference_builders(attack.builders) if attack else [])
    for source in attack.cells if attack else ():
        nb.cells.append(code(source.strip()))
    if attack:
        nb.metadata.update(attack.metadata)
        for c in nb.cells:
            if attack.tags:
                c.metadata["tags"] = sorted(set(c.metadata.get("tags", [])) | set(attack.tags))
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i}"  # stable ids: the committed files only change with their source
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    nbformat.validate(nb)
    return nb


def corpus() -> dict[str, nbformat.NotebookNode]:
    books = {name: notebook(base) for name, base in BASELINES.items()}
    books.update({a.name: notebook(a.base, a) for a in ATTACKS})
    return books


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a notebook is stale")
    args = parser.parse_args(argv)
    stale = []
    books = corpus()
    for name, nb in books.items():
        path = HERE / f"{name}.ipynb"
        text = nbformat.writes(nb) + "\n"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(path.name)
            if not args.check:
                path.write_text(text, encoding="utf-8")
    extra = sorted(p.name for p in HERE.glob("*.ipynb") if p.stem not in books)
    if args.check and (stale or extra):
        print(f"stale: {', '.join(stale + extra)} (run python -m tests.adversarial.build)",
              file=sys.stderr)
        return 1
    print(f"{len(books)} notebooks, {len(stale)} written" if not args.check else "up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
