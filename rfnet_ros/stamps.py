"""Message stamps (builtin_interfaces/Time: sec, nanosec) <-> integer nanoseconds, without ROS.

``to_nanoseconds`` takes any object with ``sec`` and ``nanosec`` (an rclpy message, a rosbags message, a
:class:`Stamp`); ``from_nanoseconds`` returns a :class:`Stamp`, whose fields fill any of them:
``Time(**from_nanoseconds(ns)._asdict())``.
"""
from __future__ import annotations

from typing import NamedTuple

NANOSECONDS_PER_SECOND = 1_000_000_000


class Stamp(NamedTuple):
    """A stamp's fields: whole seconds and the nanoseconds within the second (0 <= nanosec < 1e9)."""

    sec: int
    nanosec: int


def to_nanoseconds(stamp) -> int:
    """``stamp.sec`` and ``stamp.nanosec`` -> nanoseconds since the clock's zero."""
    return stamp.sec * NANOSECONDS_PER_SECOND + stamp.nanosec


def from_nanoseconds(nanoseconds: int) -> Stamp:
    """Nanoseconds since the clock's zero -> (sec, nanosec), nanosec in [0, 1e9)."""
    sec, nanosec = divmod(int(nanoseconds), NANOSECONDS_PER_SECOND)
    return Stamp(sec, nanosec)
