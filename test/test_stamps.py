"""rfnet_ros.stamps: message stamps <-> integer nanoseconds, for rosbags messages as for rclpy's."""
import pytest
from rosbags.typesys import Stores, get_typestore

from rfnet_ros.stamps import Stamp, from_nanoseconds, to_nanoseconds


@pytest.mark.parametrize("nanoseconds", [0, 1, 999_999_999, 1_000_000_000, 1_700_000_000_123_456_789])
def test_round_trip(nanoseconds):
    stamp = from_nanoseconds(nanoseconds)
    assert 0 <= stamp.nanosec < 1_000_000_000
    assert to_nanoseconds(stamp) == nanoseconds


def test_fields_fill_a_message_stamp():
    Time = get_typestore(Stores.ROS2_HUMBLE).types["builtin_interfaces/msg/Time"]
    time = Time(**from_nanoseconds(1_700_000_000_123_456_789)._asdict())
    assert (time.sec, time.nanosec) == (1_700_000_000, 123_456_789)
    assert to_nanoseconds(time) == 1_700_000_000_123_456_789
    assert from_nanoseconds(2_500_000_000) == Stamp(sec=2, nanosec=500_000_000)
