"""Every setting a user can change is described once, on its configuration field: the
description and offered range that the ROS parameter descriptors are made from, and a default
that its own rules accept."""
from dataclasses import fields

import pytest

from mos_ros.core.postprocess import DecodeSettings
from mos_ros.core.quality import QualityConfig
from mos_ros.core.selection import SelectorConfig
from mos_ros.core.stamp_cache import StampCacheConfig
from mos_ros.core.tracking import TrackerConfig
from mos_ros.core.validation import describe
from mos_ros.ros.health import HealthLimits

CONFIGS = (DecodeSettings, SelectorConfig, TrackerConfig, QualityConfig, StampCacheConfig,
           HealthLimits)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.__name__)
def test_every_field_is_described_with_a_default_inside_its_range(config):
    for field in fields(config):
        default, doc, offered = describe(config, field.name)
        assert doc and doc[0].isupper() and not doc.endswith("."), field.name
        if isinstance(default, bool):
            assert offered is None, field.name
        else:
            low, high = offered
            assert low <= default <= high, field.name
    assert config().problems() == []


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.__name__)
def test_the_middle_of_each_offered_range_is_a_valid_value(config):
    """The offered range and the rules agree: its inside is what the rules accept (a bound
    itself may be refused, as 0 for a rule "> 0")."""
    for field in fields(config):
        _, _, offered = describe(config, field.name)
        if offered is None:
            continue
        low, high = offered
        middle = (low + high) / 2
        if isinstance(field.default, int):
            middle = int(middle)
        problems = config.problems_for(**{field.name: middle})
        assert not [p for p in problems if p.startswith(field.name + " ")], (field.name, problems)


def test_a_field_without_a_description_is_named():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Bare:
        size: int = 3

    with pytest.raises(KeyError, match="Bare.size has no description"):
        describe(Bare, "size")
