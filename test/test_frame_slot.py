"""The newest-frame slot and its worker (rfnet_ros.ros.frame_slot), with plain threads: no ROS, no clock."""
from __future__ import annotations

import threading

import pytest

from rfnet_ros.ros.frame_slot import NewestFrameWorker, Requests

WAIT = 30.0  # generous bound on events that follow at once; never reached when the code is right


class Consumer:
    """Records what the worker hands over; blocks inside a frame while ``gate`` is closed."""

    def __init__(self):
        self.taken: list[tuple[object, Requests]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.done = threading.Condition()

    def __call__(self, frame, requests: Requests) -> None:
        self.entered.set()
        assert self.gate.wait(WAIT)
        with self.done:
            self.taken.append((frame, requests))
            self.done.notify_all()

    def wait_for(self, count: int) -> None:
        with self.done:
            assert self.done.wait_for(lambda: len(self.taken) >= count, WAIT), self.taken


@pytest.fixture
def running():
    """A started worker and its consumer; the consumer's gate is opened and the worker stopped afterwards."""
    consumer = Consumer()
    worker = NewestFrameWorker(consumer)
    worker.start()
    yield consumer, worker
    consumer.gate.set()
    assert worker.stop(WAIT)


def test_frames_offered_while_one_is_consumed_leave_only_the_newest(running):
    consumer, worker = running
    assert worker.offer("first") is False
    assert consumer.entered.wait(WAIT)  # "first" is inside the consumer, the slot is empty
    assert worker.offer("second") is False
    assert worker.offer("third") is True  # replaced "second", which was never taken: dropped
    assert worker.offer("fourth") is True
    consumer.gate.set()
    consumer.wait_for(2)
    assert [frame for frame, _ in consumer.taken] == ["first", "fourth"]


def test_requests_travel_with_the_next_frame_taken_and_only_once(running):
    consumer, worker = running
    worker.offer(1)
    assert consumer.entered.wait(WAIT)
    worker.request_reset()
    worker.request_settings("old")
    worker.request_settings("new")  # a later request replaces an earlier one
    worker.offer(2)
    consumer.gate.set()
    consumer.wait_for(2)
    worker.offer(3)
    consumer.wait_for(3)
    assert consumer.taken[0][1] == Requests()
    assert consumer.taken[1][1] == Requests(reset=True, settings="new")
    assert consumer.taken[2][1] == Requests()


def test_stop_ends_the_worker_and_abandons_a_frame_still_inside_after_the_timeout():
    consumer = Consumer()
    worker = NewestFrameWorker(consumer)
    worker.start()
    worker.offer("slow")
    assert consumer.entered.wait(WAIT)
    assert worker.stop(0.05) is False  # still inside the consumer: abandoned, not waited for
    assert worker.stopping
    worker.offer("after stop")
    consumer.gate.set()
    consumer.wait_for(1)
    assert worker.stop(WAIT)  # the thread ended after the frame it had, without taking another
    assert [frame for frame, _ in consumer.taken] == ["slow"]


def test_an_idle_worker_stops_at_once():
    worker = NewestFrameWorker(Consumer())
    worker.start()
    assert worker.stop(WAIT)
