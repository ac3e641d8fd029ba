"""The rubric loads, validates and refuses broken files with a sentence naming file, task, key."""

from __future__ import annotations

import json

import pytest
import yaml

from grader.errors import RubricError
from grader.rubric import default_rubric_path, load_rubric

from .conftest import assert_one_sentence


@pytest.fixture
def raw():
    # through JSON: YAML aliases (*builder) would otherwise share one dict between tasks
    return json.loads(json.dumps(yaml.safe_load(default_rubric_path().read_text())))


def write(tmp_path, data):
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_shipped_rubric_is_valid_and_worth_100_points():
    rubric = load_rubric()
    assert [t.id for t in rubric.tasks] == ["rnn", "task1", "task2", "task3", "bonus"]
    assert sum(c.points for t in rubric.tasks for c in t.checks) == 100
    assert {t.builder for t in rubric.tasks} == {
        "build_rnn_model", "build_lstm_model", "build_lstm_dropout_model",
        "build_cnn_lstm_model", "build_convlstm_model"}
    expected_params = {t.id: t.check("params").options["expect"] for t in rubric.tasks}
    assert expected_params == {"rnn": 180_737, "task1": 242_561, "task2": 242_561,
                               "task3": 245_665, "bonus": 407_001}
    assert set(rubric.profiles) == {"structure", "quick", "full"}


def test_accuracy_checks_apply_only_where_a_threshold_exists():
    rubric = load_rubric()
    acc = rubric.task("task1").check("accuracy")
    assert not acc.applies_to("structure")
    assert acc.applies_to("quick") and acc.applies_to("full")


@pytest.mark.parametrize("edit, words", [
    (lambda r: r["tasks"][1]["checks"][1].update(check="layer_sequence"),
     ["task 'task1'", "check 'layers'", "unknown check 'layer_sequence'"]),
    (lambda r: r["tasks"][1]["checks"][2].update(expected=5),
     ["task 'task1'", "check 'params'", "unknown key 'expected'"]),
    (lambda r: r["tasks"][2]["checks"][6]["threshold"].update(fast=0.7),
     ["task 'task2'", "check 'accuracy'", "unknown profile 'fast'"]),
    (lambda r: r["tasks"][3]["checks"][1]["expect"][1].update(filter=32),
     ["task 'task3'", "check 'layers'", "unknown layer setting 'filter'"]),
    (lambda r: r["tasks"][0].update(builder="build rnn"), ["task 'rnn'", "key 'builder'"]),
    (lambda r: r["tasks"][4]["checks"][0].pop("points"), ["task 'bonus'", "'points'"]),
    (lambda r: r["profiles"]["quick"]["parameters"].update(EPOCH=2),
     ["key 'profiles.quick.parameters'", "EPOCH"]),
    (lambda r: r["tasks"][1]["checks"].append(dict(r["tasks"][1]["checks"][0])),
     ["task 'task1'", "check 'builder' appears twice"]),
])
def test_broken_rubric_names_file_task_and_key(tmp_path, raw, edit, words):
    edit(raw)
    path = write(tmp_path, raw)
    with pytest.raises(RubricError) as info:
        load_rubric(path)
    message = str(info.value)
    assert str(path) in message
    for w in words:
        assert w in message
    assert_one_sentence(message)


@pytest.mark.parametrize("version, words", [(0, "older than"), (2, "newer than")])
def test_schema_version_too_old_or_too_new(tmp_path, raw, version, words):
    raw["schema_version"] = version
    with pytest.raises(RubricError, match=words):
        load_rubric(write(tmp_path, raw))


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [unclosed\n")
    with pytest.raises(RubricError, match="not valid YAML at line"):
        load_rubric(bad)
    with pytest.raises(RubricError, match="cannot be read"):
        load_rubric(tmp_path / "missing.yaml")


def test_unknown_profile_is_an_error(raw, tmp_path):
    rubric = load_rubric(write(tmp_path, raw))
    with pytest.raises(RubricError, match="no profile 'gpu'"):
        rubric.profile("gpu")
