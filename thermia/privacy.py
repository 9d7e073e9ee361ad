"""Pseudonymous unit ids: a keyed hash whose key stays outside results and MLflow.

The key (salt) is read from ``THERMIA_SALT``, else from the file named by
``THERMIA_SALT_FILE``, else from ``~/.config/thermia/salt``, which is created
with owner-only permissions on first use. Without the key a pseudonym cannot be
linked back to a subject; with it, the data controller can re-identify a unit
flagged as at risk.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path


def salt_path() -> Path:
    configured = os.environ.get("THERMIA_SALT_FILE")
    if configured:
        return Path(configured)
    return Path.home() / ".config" / "thermia" / "salt"


def load_salt() -> bytes:
    """Return the pseudonymisation key, creating one if none exists yet."""
    if os.environ.get("THERMIA_SALT"):
        return os.environ["THERMIA_SALT"].encode()
    path = salt_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def pseudonym(unit_id: str, salt: bytes) -> str:
    """Return a stable pseudonym such as ``u-3f9a0c51d2`` for ``unit_id``."""
    digest = hmac.new(salt, str(unit_id).encode(), hashlib.sha256).hexdigest()
    return f"u-{digest[:10]}"


def display_ids(unit_ids, real: bool = False) -> list[str]:
    """Return the ids to show for ``unit_ids``: pseudonyms unless ``real``."""
    if real:
        return [str(u) for u in unit_ids]
    salt = load_salt()
    return [pseudonym(u, salt) for u in unit_ids]
