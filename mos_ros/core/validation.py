"""Frozen configuration dataclasses that check their fields when they are made.

A configuration states its rules once, in :meth:`Validated.rules`; construction fails with every
broken rule named, and :meth:`Validated.problems` gives the same reasons without raising, which
is what a ROS parameter callback needs to reject a change with a reason.
"""
from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

#: One rule: the field's name, whether its value obeys the rule, and the rule in words.
Rule = tuple[str, bool, str]


class Validated:
    """Mixin for frozen dataclasses whose fields must obey :meth:`rules`."""

    def rules(self) -> list[Rule]:
        """The rules of this configuration, evaluated on its current values."""
        raise NotImplementedError

    def problems(self) -> list[str]:
        """Human-readable reasons why this configuration is invalid (empty when valid)."""
        return [f"{name} must be {rule} (got {getattr(self, name)})"
                for name, ok, rule in self.rules() if not ok]

    @classmethod
    def problems_for(cls, **values: Any) -> list[str]:
        """Why ``cls(**values)`` would be refused, without making it (empty when valid).

        Fields not given take their defaults; used to validate proposed run-time changes.
        """
        candidate = object.__new__(cls)
        for field in fields(cls):
            default = field.default_factory() if field.default is MISSING else field.default
            object.__setattr__(candidate, field.name, values.get(field.name, default))
        return candidate.problems()

    def __post_init__(self) -> None:
        """Reject values that make no sense, naming every offending field."""
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))
