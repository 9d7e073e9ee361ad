"""Load, complete and validate a thermia configuration against its JSON Schema."""

from __future__ import annotations

import copy
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

#: Keys that do not shape the main study's results (the factor study has its own
#: hash, thermia.study.study_hash).
UNHASHED_SECTIONS = ("tracking", "results", "study")


class ConfigError(ValueError):
    """A configuration value is missing, misspelt or out of range."""


def load_schema() -> dict[str, Any]:
    """Return the configuration schema shipped with the package."""
    text = resources.files("thermia").joinpath("schema/config.schema.yaml").read_text()
    return yaml.safe_load(text)


def _fill_defaults(instance: dict[str, Any], schema: dict[str, Any]) -> None:
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if isinstance(instance.get(key), dict) and sub.get("type") == "object":
            _fill_defaults(instance[key], sub)


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def validate_config(
    config: dict[str, Any] | None, source: str = "config"
) -> dict[str, Any]:
    """Return a completed copy of ``config``, or raise :class:`ConfigError`.

    Missing keys take their schema defaults; an unknown (for example misspelt)
    key, a wrong type or an out-of-range value is an error naming the key.
    """
    schema = load_schema()
    resolved = copy.deepcopy(config) if config else {}
    if not isinstance(resolved, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys")
    _fill_defaults(resolved, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(resolved), key=lambda e: list(e.path))
    if errors:
        lines = [f"{source}: {_key_path(e)}: {e.message}" for e in errors]
        raise ConfigError("invalid configuration\n  " + "\n  ".join(lines))
    _check_consistency(resolved, source)
    return resolved


def _check_consistency(config: dict[str, Any], source: str) -> None:
    data = config["data"]
    if data["source"] == "manifest" and not data["manifest"]["path"]:
        raise ConfigError(
            f"{source}: data.manifest.path must be set when data.source is 'manifest'"
        )
    split = config["split"]
    if "lira_online" in config["attacks"]["enabled"] and split["scheme"] == "disjoint":
        raise ConfigError(
            f"{source}: attacks.enabled: lira_online needs shadows that held the "
            "target's units; use split.scheme 'independent' or 'rotate'"
        )
    if split["scheme"] == "disjoint" and split["n_models"] < 2:
        raise ConfigError(f"{source}: split.n_models must be at least 2")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML file (safe loader) and return the validated configuration."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # a SafeLoader
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such configuration file") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return validate_config(raw, source=str(path))


def config_hash(config: dict[str, Any]) -> str:
    """Return a short hash of everything in ``config`` that shapes the results."""
    hashed = {k: v for k, v in config.items() if k not in UNHASHED_SECTIONS}
    text = json.dumps(hashed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
