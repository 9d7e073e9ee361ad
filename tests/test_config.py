"""Tests of configuration loading, validation, defaults and hashing."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from thermia.config import (
    ConfigError,
    config_hash,
    load_config,
    load_schema,
    validate_config,
)

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "config.yaml"
KEY_LINE = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*)\s*:(.*)$")


def key_paths(text: str) -> list[tuple[int, str, bool]]:
    """Return ``(line number, dotted key, commented)`` for every key of a YAML text.

    A key counts as commented when the line directly above it is a comment or
    the key's own line carries one.
    """
    lines = text.splitlines()
    stack: list[tuple[int, str]] = []
    out = []
    for i, line in enumerate(lines):
        match = KEY_LINE.match(line)
        if not match:
            continue
        indent, key, rest = len(match[1]), match[2], match[3]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        above = lines[i - 1].strip() if i > 0 else ""
        commented = above.startswith("#") or "#" in rest
        out.append((i + 1, ".".join(k for _, k in stack), commented))
    return out


def schema_default(*path: str):
    node = load_schema()
    for key in path:
        node = node["properties"][key]
    return node["default"]


@pytest.fixture(scope="module")
def shipped() -> dict:
    return load_config(SHIPPED)


def test_shipped_config_validates(shipped):
    raw = yaml.safe_load(SHIPPED.read_text())
    assert shipped["split"]["scheme"] == raw["split"]["scheme"]
    assert shipped["model"]["epochs"] == raw["model"]["epochs"]


def test_key_parser_sees_every_key_of_the_shipped_file():
    """The comment check below must look at every key that YAML reads."""

    def flatten(node, prefix=""):
        for key, value in node.items():
            yield prefix + key
            if isinstance(value, dict):
                yield from flatten(value, prefix + key + ".")

    raw = yaml.safe_load(SHIPPED.read_text())
    parsed = {path for _, path, _ in key_paths(SHIPPED.read_text())}
    assert parsed == set(flatten(raw))


def test_key_parser_flags_an_uncommented_key():
    text = "# a\nalpha: 1\nbeta: 2  # b\ngamma:\n  # c\n  delta: 3\n"
    flags = {path: ok for _, path, ok in key_paths(text)}
    assert flags == {"alpha": True, "beta": True, "gamma": False, "gamma.delta": True}


def uncommented(sections: bool) -> list[str]:
    """Keys of the shipped file without a comment: sections or settings."""
    raw = yaml.safe_load(SHIPPED.read_text())

    def is_section(path: str) -> bool:
        node = raw
        for key in path.split("."):
            node = node[key]
        return isinstance(node, dict)

    return [
        f"line {n}: {path}"
        for n, path, ok in key_paths(SHIPPED.read_text())
        if not ok and is_section(path) == sections
    ]


def test_every_shipped_setting_has_a_comment():
    missing = uncommented(sections=False)
    assert not missing, "settings without a comment above or beside them:\n" + (
        "\n".join(missing)
    )


def test_every_shipped_section_has_a_comment():
    missing = uncommented(sections=True)
    assert not missing, "sections without a comment above or beside them:\n" + (
        "\n".join(missing)
    )


def test_defaults_fill_missing_sections():
    given = {"seed": 3, "data": {"source": "synthetic"}}
    resolved = validate_config(given)
    assert given == {"seed": 3, "data": {"source": "synthetic"}}  # not mutated
    assert resolved["seed"] == 3
    assert resolved["model"]["epochs"] == schema_default("model", "epochs")
    assert resolved["split"]["scheme"] == schema_default("split", "scheme")
    assert resolved["data"]["synthetic"]["n_subjects"] == schema_default(
        "data", "synthetic", "n_subjects"
    )
    assert resolved["tracking"]["uri"] == schema_default("tracking", "uri")


def test_empty_config_is_all_defaults():
    resolved = validate_config(None)
    assert resolved["seed"] == schema_default("seed")
    assert set(resolved) == set(load_schema()["properties"])


def test_misspelt_key_names_section_and_key():
    with pytest.raises(ConfigError) as info:
        validate_config({"model": {"epoch": 3}})
    message = str(info.value)
    assert "model" in message
    assert "epoch" in message


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"model": {"epochs": 0}}, "model.epochs"),
        ({"split": {"n_models": 1}}, "split.n_models"),
        ({"evaluation": {"alphas": [1.5]}}, "evaluation.alphas"),
        ({"model": {"learning_rate": 0}}, "model.learning_rate"),
        ({"split": {"membership_unit": "patient"}}, "split.membership_unit"),
        ({"seed": -1}, "seed"),
    ],
)
def test_out_of_range_value_names_the_key(config, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        validate_config(config)


def test_manifest_source_needs_a_path():
    with pytest.raises(ConfigError, match=r"data\.manifest\.path"):
        validate_config({"data": {"source": "manifest"}})
    resolved = validate_config(
        {"data": {"source": "manifest", "manifest": {"path": "frames.csv"}}}
    )
    assert resolved["data"]["manifest"]["path"] == "frames.csv"


def test_online_lira_needs_shadows_that_held_the_target_units():
    attacks = {"enabled": ["lira_online"]}
    with pytest.raises(ConfigError, match="lira_online") as info:
        validate_config({"attacks": attacks, "split": {"scheme": "disjoint"}})
    assert "split.scheme" in str(info.value)
    for scheme in ("independent", "rotate"):
        validate_config({"attacks": attacks, "split": {"scheme": scheme}})


def test_load_config_reports_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="no such"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_config(bad)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("model", "epochs", 7),
        ("model", "input_width", 32),
        ("split", "scheme", "rotate"),
        ("split", "membership_unit", "session"),
        ("data", "normalisation", "frame"),
        ("evaluation", "alphas", [0.05]),
    ],
)
def test_config_hash_follows_result_shaping_values(shipped, section, key, value):
    changed = copy.deepcopy(shipped)
    assert changed[section][key] != value
    changed[section][key] = value
    assert config_hash(changed) != config_hash(shipped)


def test_config_hash_follows_seed(shipped):
    changed = {**shipped, "seed": shipped["seed"] + 1}
    assert config_hash(changed) != config_hash(shipped)


def test_config_hash_ignores_tracking(shipped):
    changed = copy.deepcopy(shipped)
    changed["tracking"] = {
        "uri": "sqlite:///elsewhere/mlflow.db",
        "experiment": "another",
        "real_unit_ids": not shipped["tracking"]["real_unit_ids"],
    }
    assert config_hash(changed) == config_hash(shipped)
    assert config_hash(copy.deepcopy(shipped)) == config_hash(shipped)


def test_a_key_given_twice_is_an_error(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("model:\n  epochs: 2\n  epochs: 3\n")
    with pytest.raises(ConfigError, match="'epochs' is given twice"):
        load_config(path)
