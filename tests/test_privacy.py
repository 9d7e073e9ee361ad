"""Tests of pseudonymous unit ids and of where their key (salt) comes from."""

from __future__ import annotations

import re
import stat

import pytest

from thermia.privacy import display_ids, load_salt, pseudonym

UNITS = [f"subject-{i:03d}" for i in range(50)] + ["p01/s1", "p02/s1", "Kim Lee"]


@pytest.fixture(autouse=True)
def no_salt_settings(monkeypatch, tmp_path):
    """Keep the user's own salt out of reach: a fresh home, no salt variables."""
    monkeypatch.delenv("THERMIA_SALT", raising=False)
    monkeypatch.delenv("THERMIA_SALT_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_pseudonyms_are_stable_for_a_salt():
    first = [pseudonym(u, b"salt-one") for u in UNITS]
    assert first == [pseudonym(u, b"salt-one") for u in UNITS]
    assert len(set(first)) == len(UNITS)


def test_pseudonyms_differ_across_salts():
    one = [pseudonym(u, b"salt-one") for u in UNITS]
    two = [pseudonym(u, b"salt-two") for u in UNITS]
    assert all(a != b for a, b in zip(one, two, strict=True))


def test_pseudonyms_never_contain_the_real_id():
    for unit in UNITS:
        alias = pseudonym(unit, b"salt-one")
        assert unit not in alias
        assert re.fullmatch(r"u-[0-9a-f]{10}", alias), alias


def test_salt_from_the_environment(monkeypatch):
    monkeypatch.setenv("THERMIA_SALT", "from-env")
    assert load_salt() == b"from-env"
    assert display_ids(UNITS[:3]) == [pseudonym(u, b"from-env") for u in UNITS[:3]]


def test_salt_from_a_named_file(monkeypatch, tmp_path):
    salt_file = tmp_path / "salt.txt"
    salt_file.write_text("from-file\n")
    monkeypatch.setenv("THERMIA_SALT_FILE", str(salt_file))
    assert display_ids(UNITS[:3]) == [pseudonym(u, b"from-file") for u in UNITS[:3]]


def test_environment_salt_wins_over_the_file(monkeypatch, tmp_path):
    salt_file = tmp_path / "salt.txt"
    salt_file.write_text("from-file")
    monkeypatch.setenv("THERMIA_SALT_FILE", str(salt_file))
    monkeypatch.setenv("THERMIA_SALT", "from-env")
    assert load_salt() == b"from-env"


def test_new_salt_file_is_private_and_reused(monkeypatch, tmp_path):
    salt_file = tmp_path / "keys" / "salt"
    monkeypatch.setenv("THERMIA_SALT_FILE", str(salt_file))
    first = display_ids(UNITS)
    assert salt_file.exists()
    assert stat.S_IMODE(salt_file.stat().st_mode) == 0o600
    assert len(salt_file.read_text().strip()) >= 32
    assert display_ids(UNITS) == first
    salt_file.unlink()
    assert display_ids(UNITS) != first


def test_default_salt_file_lives_in_the_home_folder(tmp_path):
    ids = display_ids(UNITS[:2])
    salt_file = tmp_path / "home" / ".config" / "thermia" / "salt"
    assert stat.S_IMODE(salt_file.stat().st_mode) == 0o600
    salt = salt_file.read_text().strip().encode()
    assert ids == [pseudonym(u, salt) for u in UNITS[:2]]


def test_real_ids_on_request(tmp_path):
    assert display_ids(UNITS, real=True) == UNITS
    assert display_ids([3, "p1"], real=True) == ["3", "p1"]
    assert not (tmp_path / "home").exists()
