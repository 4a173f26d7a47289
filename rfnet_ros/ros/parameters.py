"""ROS parameters of the feature node, declared from the settings dataclasses (the single source of defaults).

Every field of :class:`~rfnet_ros.config.FeatureConfig` and :class:`~rfnet_ros.config.NodeConfig` becomes a
parameter of the same name, type and default, with a ParameterDescriptor built from the field's metadata
(description, integer or floating-point range, allowed values). Settings that decide what is loaded or
subscribed at start-up are read-only (``read_only`` in their metadata, rfnet_ros.config).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import MISSING, Field, asdict, fields
from typing import Any

import yaml
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node

from rfnet_ros.config import FeatureConfig, NodeConfig
from rfnet_ros.ros.frame_cost import model_size_problem

SETTINGS = (FeatureConfig, NodeConfig)
TYPE_NAMES = {bool: "a bool", int: "an integer", float: "a double", str: "a string"}
PARAMETER_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
                   float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}


class ParameterError(ValueError):
    """A parameter value the node cannot start with; the text names the parameter."""


def all_fields(settings: tuple[type, ...] = SETTINGS) -> list[Field]:
    """Fields of every settings dataclass (the feature node's by default), in declaration order."""
    return [f for cls in settings for f in fields(cls)]


def parameter_names(settings: tuple[type, ...] = SETTINGS) -> tuple[str, ...]:
    return tuple(f.name for f in all_fields(settings))


def descriptor_for(f: Field, constraints: bool = True) -> ParameterDescriptor:
    """The ParameterDescriptor of a settings field; ``constraints=False`` leaves out type, ranges and read_only
    (for declare_parameter, which takes the type from the default)."""
    meta = f.metadata
    notes = []
    if meta.get("choices"):
        notes.append("one of: " + ", ".join(meta["choices"]))
    if meta["read_only"]:
        notes.append("read-only: set at start-up")
    descriptor = ParameterDescriptor(name=f.name, description=meta.get("description", ""),
                                     additional_constraints="; ".join(notes))
    if not constraints:
        return descriptor
    descriptor.type = PARAMETER_TYPES[type(f.default)]
    descriptor.read_only = meta["read_only"]
    low, high = meta.get("low"), meta.get("high")
    if low is not None and high is not None:
        if type(f.default) is int:
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
        elif type(f.default) is float:
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high),
                                                                  step=0.0)]
    return descriptor


def _default(f: Field) -> Any:
    assert f.default is not MISSING, f"{f.name}: settings fields need a default"
    return f.default


def _type_error(f: Field, given: str = "") -> ParameterError:
    return ParameterError(f"invalid parameter {f.name}: expected {TYPE_NAMES[type(f.default)]} value such as "
                          f"{f.default!r}{given}")


# ``-p name:=value`` or ``-p node_name:name:=value`` (rcl's parameter rule).
_PARAM_RULE = re.compile(r"^(?:(?P<node>[^:=]+):)?(?P<name>[^:=]+):=(?P<value>.*)$", re.DOTALL)


def command_line_values(argv: Sequence[str], node_name: str) -> dict[str, str]:
    """The ``-p``/``--param`` values of ``argv``'s --ros-args sections meant for ``node_name``, as written.

    rcl merges them into the values of --params-file files; where a value's type differs from the file's,
    rcl keeps both and rclpy takes the file's, so a mistyped ``-p`` would be silently ignored. The node
    checks these values itself with :func:`check_command_line_types`.
    """
    values: dict[str, str] = {}
    in_ros_args = False
    tokens = iter(argv)
    for token in tokens:
        if token == "--ros-args":
            in_ros_args = True
        elif token == "--":
            in_ros_args = False
        elif in_ros_args and token in ("-p", "--param"):
            rule = _PARAM_RULE.match(next(tokens, ""))
            if rule and (rule["node"] is None or rule["node"] in ("*", "**")
                         or rule["node"].rsplit("/", 1)[-1] == node_name):
                values[rule["name"]] = rule["value"]
    return values


def check_command_line_types(values: dict[str, str], settings: tuple[type, ...] = SETTINGS) -> None:
    """Raise :class:`ParameterError` for a ``-p`` value whose YAML type (how rcl reads it) is not the setting's
    type (an integer is no double, as for rclpy's own check)."""
    by_name = {f.name: f for f in all_fields(settings)}
    for name, text in values.items():
        f = by_name.get(name)
        if f is None:
            continue
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        if type(value) is not type(f.default):
            raise _type_error(f, f", got {text!r} (-p {name}:={text})")


def declare_settings(node: Node, command_line: Sequence[str] = (), settings: tuple[type, ...] = SETTINGS
                     ) -> tuple[Any, ...]:
    """Declare every setting of the ``settings`` dataclasses (the feature node's: FeatureConfig and NodeConfig) as
    a parameter of ``node`` and return the validated settings, one instance per class.

    Values come from the parameter overrides (--params-file, -p) or the dataclass defaults. Raises
    :class:`ParameterError` ("invalid parameter <name>: <why>") for a wrong type or an invalid value,
    ``-p`` values of ``command_line`` (the process arguments) included.

    Declared in two steps so that an invalid value is reported in the settings' own words: first without
    ranges (a value out of range would make rclpy raise its own message), then, once the dataclasses
    accept the values, the full descriptors (ranges, read-only) are set.
    """
    check_command_line_types(command_line_values(command_line, node.get_name()), settings)
    for f in all_fields(settings):
        try:
            node.declare_parameter(f.name, _default(f), descriptor_for(f, constraints=False))
        except InvalidParameterTypeException:
            raise _type_error(f) from None
        except InvalidParameterValueException as exc:
            raise ParameterError(f"invalid parameter {f.name}: {exc}") from None
    values = {f.name: node.get_parameter(f.name).value for f in all_fields(settings)}
    built = build_settings(values, settings)
    for f in all_fields(settings):
        node.set_descriptor(f.name, descriptor_for(f))
    return built


def build_settings(values: dict[str, Any], settings: tuple[type, ...] = SETTINGS) -> tuple[Any, ...]:
    """Settings from parameter values (every name given), one instance per class of ``settings`` (FeatureConfig
    first, NodeConfig second); raises :class:`ParameterError` naming the key."""
    try:
        built = tuple(cls(**{f.name: values[f.name] for f in fields(cls)}) for cls in settings)
    except ValueError as exc:
        raise ParameterError(f"invalid parameter {exc}") from None
    problem = model_size_problem(built[0], built[1].max_model_pixels)
    if problem:
        raise ParameterError(f"invalid parameter {problem}")
    return built


def updated_settings(current: tuple[Any, ...], changes: dict[str, Any]) -> tuple[Any, ...]:
    """The settings with ``changes`` applied; raises :class:`ParameterError` when they are invalid."""
    values = {key: value for settings in current for key, value in asdict(settings).items()}
    return build_settings({**values, **changes}, tuple(type(settings) for settings in current))


def unknown_overrides(node: Node) -> list[str]:
    """Names given to this node (--params-file, -p) that it does not declare: most likely typos.

    rclpy keeps the overrides in a private attribute; where it is missing, nothing is reported.
    """
    overrides = getattr(node, "_parameter_overrides", None) or {}
    return sorted(name for name in overrides if not node.has_parameter(name))
