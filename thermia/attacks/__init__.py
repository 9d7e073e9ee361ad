"""Membership inference attacks on arrays of model signals.

``ATTACKS`` maps each attack name to its scoring function; :func:`run_attack`
drives an attack over one or more turns and makes its decisions on shadows only.
"""

from thermia.attacks.core import (
    AttackResult,
    MembershipView,
    Turn,
    attack_registry,
    run_attack,
)

ATTACKS = attack_registry()

__all__ = ["ATTACKS", "AttackResult", "MembershipView", "Turn", "run_attack"]
