"""Frozen configuration dataclasses that check their fields when they are made.

A configuration states its rules once, in :meth:`Validated.rules`; construction fails with every
broken rule named, and :meth:`Validated.problems` gives the same reasons without raising, which
is what a ROS parameter callback needs to reject a change with a reason.

A field made with :func:`setting` also carries its description and the range offered to users;
the ROS parameter descriptors are generated from them (``mos_ros.ros.params``), so a setting is
described in exactly one place.
"""
from __future__ import annotations

import dataclasses
from dataclasses import MISSING, fields
from typing import Any

#: One rule: the field's name, whether its value obeys the rule, and the rule in words.
Rule = tuple[str, bool, str]
#: Metadata keys of a :func:`setting` field.
DOC, RANGE = "doc", "range"


def setting(default: Any, doc: str, offered: tuple[float, float] | None = None) -> Any:
    """A dataclass field with its default, a one-line description and, for numbers, the range
    a user interface offers (the field's rules remain the real limits)."""
    return dataclasses.field(default=default, metadata={DOC: doc, RANGE: offered})


def describe(cls: type, name: str) -> tuple[Any, str, tuple[float, float] | None]:
    """Default, description and offered range of the :func:`setting` field ``name`` of
    ``cls``; KeyError naming the field when it has no description."""
    field = {f.name: f for f in fields(cls)}[name]
    if DOC not in field.metadata:
        raise KeyError(f"{cls.__name__}.{name} has no description (make it with setting())")
    return field.default, field.metadata[DOC], field.metadata[RANGE]


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
