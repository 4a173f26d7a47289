"""Pairing a stereo node's images by stamp and reporting a silent camera (rfnet_ros.ros.stereo_sync, ROS-free)."""
from rfnet_ros.ros.stereo_sync import WAITING, StereoSync

MS = 1_000_000


def test_images_pair_by_stamp_within_the_tolerance_and_never_go_back():
    sync = StereoSync(tolerance=0.005, now=0.0)
    assert sync.offer('left', 100 * MS, 'L100', 0.0) is None
    pair = sync.offer('right', 103 * MS, 'R103', 0.0)
    assert (pair.stamp_ns, pair.left, pair.right) == (100 * MS, 'L100', 'R103')
    # Too far apart to pair: both wait; the next right image pairs with the left one, the older right is dropped.
    assert sync.offer('left', 200 * MS, 'L200', 0.1) is None
    assert sync.offer('right', 190 * MS, 'R190', 0.1) is None
    pair = sync.offer('right', 201 * MS, 'R201', 0.1)
    assert (pair.left, pair.right) == ('L200', 'R201')
    values = sync.report(0.1, stall_timeout=2.0).values
    assert values['right_frames_without_partner'] == '1' and values['pairs'] == '2'
    exact = StereoSync(tolerance=0.0, now=0.0)
    exact.offer('right', 300 * MS, 'R', 0.0)
    assert exact.offer('left', 300 * MS + 1, 'L', 0.0) is None
    assert exact.offer('left', 300 * MS, 'L', 0.0).right == 'R'


def test_a_silent_camera_is_named_warn_then_error_after_stall_timeout():
    sync = StereoSync(tolerance=0.0, now=0.0)
    sync.offer('left', 0, 'L', 0.0)
    sync.offer('right', 0, 'R', 0.0)
    report = sync.report(0.05, stall_timeout=1.0)
    assert not report.errors and not report.warnings
    for i in range(1, 4):
        sync.offer('left', i * 100 * MS, 'L', i * 0.1)
    report = sync.report(0.35, stall_timeout=1.0)
    assert report.warnings == ['right camera silent: no image for 0.3 s while left images arrive (3 without a '
                               'partner)'] and not report.errors
    for i in range(4, 16):
        sync.offer('left', i * 100 * MS, 'L', i * 0.1)
    report = sync.report(1.55, stall_timeout=1.0)
    assert report.errors == ['right camera silent: no image for 1.6 s while left images arrive (stall_timeout '
                             '1 s): no stereo output']
    assert report.values['left_frames_without_partner'] == str(15 - WAITING)
    # Both silent: no camera is named (the pair stream's own stall warning covers it).
    assert not sync.report(10.0, stall_timeout=1.0).errors


def test_stamps_that_never_pair_are_reported():
    sync = StereoSync(tolerance=0.001, now=0.0)
    for i in range(WAITING + 2):
        sync.offer('left', i * 100 * MS, 'L', i * 0.1)
        sync.offer('right', i * 100 * MS + 20 * MS, 'R', i * 0.1)
    report = sync.report(1.2, stall_timeout=1.0)
    assert report.warnings == ['left and right stamps do not pair: 2 left and 2 right images without a partner '
                               '(sync_tolerance 0.001 s; nearest stamps 0.0200 s apart)']
