"""Which launch arguments become node parameters: only those given a value.

``launch/mos.launch.py`` passes the params file first and these overrides after it, so a
user's file sets every parameter and an argument changes one only when it is given. Kept here,
without the launch packages, so the rule is tested where launch is not installed.
"""
from __future__ import annotations

from typing import Any, Mapping

#: Launch argument -> detector parameter, applied when the argument is not empty.
DETECTOR_ARGUMENTS = {"model": "model_path", "backend": "backend", "input": "input"}
#: Launch argument -> selector parameter, applied when the argument is not empty.
SELECTOR_ARGUMENTS = {"input": "input"}
#: Launch argument -> selector parameter (true or false), applied when the argument is not empty.
SELECTOR_FLAGS = {"ros4hri": "ros4hri"}
TRUE = "true"
#: Every launch argument :func:`parameter_overrides` reads.
READ_ARGUMENTS = (frozenset(DETECTOR_ARGUMENTS) | frozenset(SELECTOR_ARGUMENTS)
                  | frozenset(SELECTOR_FLAGS) | {"use_sim_time", "use_rviz"})


def _flag(text: str) -> bool:
    return text.strip().lower() == TRUE


def parameter_overrides(arguments: Mapping[str, str], node: str) -> dict[str, Any]:
    """The parameters of ``node`` ("mos_detector" or "face_selector") that the given launch
    ``arguments`` (name -> text, empty when not given) set."""
    names = DETECTOR_ARGUMENTS if node == "mos_detector" else SELECTOR_ARGUMENTS
    values: dict[str, Any] = {param: arguments[arg] for arg, param in names.items()
                              if arguments.get(arg, "")}
    if arguments.get("use_sim_time", ""):
        values["use_sim_time"] = _flag(arguments["use_sim_time"])
    if node == "mos_detector" and _flag(arguments.get("use_rviz", "")):
        values["publish_annotated"] = True
    if node == "face_selector":
        values.update({param: _flag(arguments[arg]) for arg, param in SELECTOR_FLAGS.items()
                       if arguments.get(arg, "")})
    return values
