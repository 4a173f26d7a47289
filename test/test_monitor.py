"""Unit tests of rfnet_ros.ros.monitor: time jumps, counters, per-period statistics and levels (fake clock)."""
import pytest

from rfnet_ros.ros.monitor import ERROR, GAP_FACTOR, MIN_PERIODS, OK, STAGE_NAMES, WARN, FrameMonitor, StampMonitor

SECOND = 1_000_000_000


def feed(monitor: StampMonitor, stamps_s):
    return [monitor.update(int(s * SECOND)) for s in stamps_s]


def test_regular_stamps_are_no_jumps_and_teach_the_period():
    monitor = StampMonitor()
    assert monitor.expected_period is None
    assert feed(monitor, [i * 0.1 for i in range(MIN_PERIODS + 1)]) == [None] * (MIN_PERIODS + 1)
    assert monitor.expected_period == pytest.approx(0.1)


def test_backwards_stamp_is_a_jump():
    monitor = StampMonitor()
    feed(monitor, [10.0, 10.1])
    kind, description = monitor.update(int(9.5 * SECOND))
    assert kind == 'backwards' and 'back by 0.600 s' in description
    assert monitor.update(int(9.6 * SECOND)) is None, 'the stream goes on from the new stamp'


def test_gap_far_above_the_learned_period_is_a_jump():
    monitor = StampMonitor()
    stamps = [i * 0.1 for i in range(MIN_PERIODS + 1)]
    feed(monitor, stamps)
    assert monitor.update(int((stamps[-1] + 0.1 * (GAP_FACTOR - 1)) * SECOND)) is None
    kind, description = monitor.update(int((stamps[-1] + 0.1 * (GAP_FACTOR - 1) + 0.1 * (GAP_FACTOR + 1)) * SECOND))
    assert kind == 'gap' and 'expected period 0.100 s' in description


def test_no_gap_is_reported_before_the_period_is_known():
    monitor = StampMonitor()
    assert feed(monitor, [0.0, 0.1, 50.0]) == [None, None, None]


def test_expected_rate_sets_the_period():
    monitor = StampMonitor(expected_rate=20.0)
    assert monitor.expected_period == pytest.approx(0.05)
    monitor.update(0)
    assert monitor.update(int(0.05 * GAP_FACTOR * 1.5 * SECOND))[0] == 'gap'


def test_equal_stamps_are_neither_jumps_nor_periods():
    monitor = StampMonitor()
    assert feed(monitor, [1.0] * 10) == [None] * 10
    assert monitor.expected_period is None


def processed(monitor, ms=10.0, keypoints=100, matches=50):
    monitor.on_processed({stage: ms for stage in STAGE_NAMES}, keypoints, matches)


def test_report_means_maxima_rates_and_totals():
    monitor = FrameMonitor(now=0.0)
    for i, ms in enumerate((10.0, 30.0)):
        monitor.on_received(0.1 * i)
        processed(monitor, ms, keypoints=100 + 100 * i, matches=None if i == 0 else 40)
    report = monitor.report(now=2.0, stall_timeout=5.0, context={'device': 'cpu'})
    v = report.values
    assert report.level == OK and 'processing at 1.0 Hz' in report.message
    assert v['input_rate_hz'] == '1.00' and v['output_rate_hz'] == '1.00'
    assert v['frames_received'] == '2' and v['frames_processed'] == '2'
    assert v['detect_ms_mean'] == '20.00' and v['detect_ms_max'] == '30.00'
    assert v['keypoints_mean'] == '150.0' and v['matches_mean'] == '40.0'
    assert v['device'] == 'cpu'
    # The next period starts empty, totals carry on.
    monitor.on_received(2.5)
    v = monitor.report(now=3.0, stall_timeout=5.0).values
    assert v['detect_ms_mean'] == '0.00' and v['frames_received'] == '3'


def test_no_input_yet_warns():
    report = FrameMonitor(now=0.0).report(now=1.0, stall_timeout=5.0)
    assert report.level == WARN and 'no image received yet' in report.message


def test_stalled_input_warns():
    monitor = FrameMonitor(now=0.0)
    monitor.on_received(0.0)
    processed(monitor)
    assert monitor.report(now=1.0, stall_timeout=2.0).level == OK
    report = monitor.report(now=3.5, stall_timeout=2.0)
    assert report.level == WARN and 'input stalled: no image for 3.5 s' in report.message


def test_dropping_most_frames_warns_of_falling_behind():
    monitor = FrameMonitor(now=0.0)
    for i in range(10):
        monitor.on_received(i * 0.1)
        if i < 7:
            monitor.on_dropped()
    report = monitor.report(now=1.0, stall_timeout=5.0)
    assert report.level == WARN and 'falling behind: dropped 7 of 10 frames' in report.message
    assert report.values['frames_dropped'] == '7'


def test_rejected_frames_warn_with_the_reason():
    monitor = FrameMonitor(now=0.0)
    monitor.on_received(0.5)
    monitor.on_rejected("unsupported encoding 'yuv422'")
    report = monitor.report(now=1.0, stall_timeout=5.0)
    assert report.level == WARN and "1 frame(s) rejected, last: unsupported encoding 'yuv422'" in report.message
    assert report.values['last_reject_reason'] == "unsupported encoding 'yuv422'"
    monitor.on_received(1.5)
    assert monitor.report(now=2.0, stall_timeout=5.0).level == OK, 'the warning is for its period only'


def test_time_jumps_warn_and_count():
    monitor = FrameMonitor(now=0.0)
    monitor.on_received(0.5)
    monitor.on_time_jump('stamp went back by 1.000 s')
    report = monitor.report(now=1.0, stall_timeout=5.0)
    assert report.level == WARN and 'time jump' in report.message and report.values['time_jumps'] == '1'


def test_inference_errors_are_errors():
    monitor = FrameMonitor(now=0.0)
    monitor.on_received(0.5)
    monitor.on_rejected('empty image: 0x0')
    monitor.on_error('RuntimeError: out of memory')
    report = monitor.report(now=1.0, stall_timeout=5.0)
    assert report.level == ERROR
    assert report.message.startswith('1 inference failure(s), last: RuntimeError: out of memory')
    assert 'rejected' in report.message


def test_a_frame_waiting_past_the_output_stall_timeout_is_an_error():
    monitor = FrameMonitor(now=0.0)
    monitor.on_received(0.0)
    monitor.on_accepted(0.0)
    assert monitor.report(now=4.0, stall_timeout=60.0, output_stall_timeout=5.0).level == OK
    for t in (5.0, 5.5, 6.0):  # input keeps arriving, nothing leaves
        monitor.on_received(t)
        monitor.on_accepted(t)
        monitor.on_dropped()
    report = monitor.report(now=6.5, stall_timeout=60.0, output_stall_timeout=5.0)
    assert report.level == ERROR
    assert report.message.startswith('output stalled: no output for 6.5 s while a frame waits '
                                     '(output_stall_timeout 5 s)')
    assert report.values['output_wait_s'] == '6.50'
    processed(monitor)  # outputs left: the wait ends
    monitor.on_received(7.0)
    monitor.on_accepted(7.0)
    assert monitor.report(now=7.5, stall_timeout=60.0, output_stall_timeout=5.0).level != ERROR


def test_a_frame_whose_outputs_left_late_between_two_reports_is_an_error_once():
    # Frames slower than output_stall_timeout but done within a report period: no report sees one waiting.
    monitor = FrameMonitor(now=0.0)
    assert monitor.report(now=0.0, stall_timeout=60.0, output_stall_timeout=0.3).level != ERROR
    monitor.on_received(0.1)
    monitor.on_accepted(0.1)
    processed(monitor, ms=350.0)  # at 0.45: 0.35 s from reception to outputs
    report = monitor.report(now=1.0, stall_timeout=60.0, output_stall_timeout=0.3)
    assert report.level == ERROR
    assert report.message.startswith('output stalled: no output for 0.35 s while a frame waited '
                                     '(output_stall_timeout 0.3 s)'), report.message
    assert report.values['output_wait_s'] == '0.00' and report.values['output_wait_max_s'] == '0.35'
    monitor.on_received(1.1)
    monitor.on_accepted(1.1)
    processed(monitor, ms=250.0)  # within the timeout: the next period clears
    report = monitor.report(now=2.0, stall_timeout=60.0, output_stall_timeout=0.3)
    assert report.level == OK and 'output stalled' not in report.message, report.message
    assert report.values['output_wait_max_s'] == '0.25'
    assert monitor.report(now=2.5, stall_timeout=60.0, output_stall_timeout=0.3).level == OK


def test_a_frame_left_waiting_in_the_slot_after_an_output_is_still_timed():
    monitor = FrameMonitor(now=0.0)
    monitor.on_received(0.0)
    monitor.on_accepted(0.0)  # into the model
    monitor.on_received(0.2)
    monitor.on_accepted(0.2)  # into the slot
    processed(monitor, ms=350.0)  # the first frame's outputs leave at 0.35; the slot's frame goes in
    report = monitor.report(now=0.5, stall_timeout=60.0, output_stall_timeout=1.0)
    assert report.level == OK and report.values['output_wait_s'] == '0.30'
    report = monitor.report(now=1.5, stall_timeout=60.0, output_stall_timeout=1.0)
    assert report.level == ERROR
    assert report.message.startswith('output stalled: no output for 1.3 s while a frame waits '
                                     '(output_stall_timeout 1 s)'), report.message
    processed(monitor, ms=1400.0)  # its outputs leave at 1.6: the next period still reports its wait
    report = monitor.report(now=2.0, stall_timeout=60.0, output_stall_timeout=1.0)
    assert report.level == ERROR and 'no output for 1.40 s while a frame waited' in report.message
    assert report.values['output_wait_s'] == '0.00'
    assert monitor.report(now=2.5, stall_timeout=60.0, output_stall_timeout=1.0).level == OK, 'then it clears'


def test_a_frame_replaced_in_the_slot_ends_its_wait():
    monitor = FrameMonitor(now=0.0)
    for t in (0.0, 1.0, 4.0):  # one in the model; the one at 1.0 waits in the slot until the one at 4.0 replaces it
        monitor.on_received(t)
        monitor.on_accepted(t)
    monitor.on_dropped()
    processed(monitor, ms=4500.0)  # the model's frame, at 4.5
    assert monitor.report(now=4.6, stall_timeout=60.0, output_stall_timeout=5.0).level == OK
    report = monitor.report(now=8.5, stall_timeout=60.0, output_stall_timeout=5.0)
    assert report.level == OK and report.values['output_wait_s'] == '4.50', 'timed from 4.0, not 1.0'
    report = monitor.report(now=9.5, stall_timeout=60.0, output_stall_timeout=5.0)
    assert report.level == ERROR and report.message.startswith('output stalled: no output for 5.5 s while a frame '
                                                               'waits')
    monitor.on_error('RuntimeError: out of memory')  # it leaves without outputs: no frame waits any more
    report = monitor.report(now=10.0, stall_timeout=60.0, output_stall_timeout=5.0)
    assert 'output stalled' not in report.message and report.values['output_wait_s'] == '0.00'


def test_most_frames_without_keypoints_warn_of_no_texture():
    monitor = FrameMonitor(now=0.0)
    for i, keypoints in enumerate((0, 0, 3, 200)):
        monitor.on_received(0.1 * i)
        processed(monitor, keypoints=keypoints)
    report = monitor.report(now=1.0, stall_timeout=5.0, min_keypoints=8)
    assert report.level == WARN and 'no texture: 3 of 4 frames gave fewer than 8 keypoints' in report.message
    for i in range(3):
        monitor.on_received(1.1 + 0.1 * i)
        processed(monitor, keypoints=0 if i == 0 else 300)
    assert monitor.report(now=2.0, stall_timeout=5.0, min_keypoints=8).level == OK
    monitor.on_received(2.1)
    processed(monitor, keypoints=0)
    assert monitor.report(now=2.5, stall_timeout=5.0, min_keypoints=0).level == OK, '0: never'


def test_input_loss_from_sequence_numbers_per_publisher():
    from rfnet_ros.ros.monitor import InputLossEstimator
    loss = InputLossEstimator()
    assert loss.update(0, None, sequence=1, publisher='a') == 0
    assert loss.update(0, None, sequence=5, publisher='a') == 3
    assert loss.update(0, None, sequence=1, publisher='b') == 0, 'another publisher starts its own count'
    assert loss.update(0, None, sequence=2, publisher='a') == 0, 'a restarted publisher: no loss'
    assert loss.update(0, None, sequence=4, publisher='b') == 2
    assert (loss.lost, loss.by_sequence, loss.source) == (5, 5, 'sequence numbers')


def test_input_loss_from_stamp_gaps_without_sequence_numbers():
    from rfnet_ros.ros.monitor import InputLossEstimator
    loss = InputLossEstimator()
    period = 0.1
    stamps = [0.0, 0.1, 0.2, 0.5, 0.58, 0.75, 0.8, 0.8]  # 2 lost before 0.5, 1 before 0.75 (1.7 periods)
    assert [loss.update(int(t * SECOND), period) for t in stamps] == [0, 0, 0, 2, 0, 1, 0, 0]
    assert loss.update(int(10.0 * SECOND), period) == 0, 'a time jump is no loss'
    assert loss.update(int(9.0 * SECOND), period) == 0, 'nor is going back'
    assert loss.update(int(9.3 * SECOND), None) == 0, 'nothing is estimated without a period'
    assert (loss.lost, loss.source) == (3, 'header stamps')


def test_input_loss_is_reported_and_warns_when_most_frames_are_lost():
    monitor = FrameMonitor(now=0.0)
    monitor.on_received(0.5)
    monitor.on_lost(3, 3, 'sequence numbers')
    report = monitor.report(now=1.0, stall_timeout=5.0)
    assert report.values['frames_lost'] == '3' and report.values['frames_lost_from'] == 'sequence numbers'
    assert report.level == WARN and 'input loss: 3 frame(s) never reached the node, 1 did' in report.message


def test_an_error_that_takes_no_frame_with_it_keeps_the_waiting_frame_timed():
    # New parameters that could not be applied are an error, but the frame waiting goes on waiting.
    monitor = FrameMonitor(now=0.0)
    monitor.on_received(0.0)
    monitor.on_accepted(0.0)
    monitor.on_error('applying the parameters failed: RuntimeError: no engine', frame_left=False)
    report = monitor.report(now=6.0, stall_timeout=60.0, output_stall_timeout=5.0)
    assert report.level == ERROR and 'output stalled: no output for 6.0 s' in report.message
    monitor = FrameMonitor(now=0.0)
    monitor.on_received(0.0)
    monitor.on_accepted(0.0)
    monitor.on_error('RuntimeError: out of memory')  # the frame failed: it left the model
    assert 'output stalled' not in monitor.report(now=6.0, stall_timeout=60.0, output_stall_timeout=5.0).message
