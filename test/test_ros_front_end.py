"""The node as a visual-odometry front end, over the real middleware: track ids, geometric check, debug
image, camera_info and the VINS feature output.

ROS TEST: needs the install tree (bash scripts/setup_env.sh), the held-out photos (bash scripts/fetch_data.sh)
and the shipped weights. One node runs for the whole module in the namespace /front_end, with the VINS
output on; a probe publishes frames one at a time and waits (bounded) for each frame's outputs. The tests
share that node and run in file order: the camera_info tests come last, since the node keeps the newest
camera_info it received.
"""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from ros_harness import SHARE, crop, photo, require_install, run_feature_node, same_stamp
from test_tracking import layered, relocate_patches

NAMESPACE = 'front_end'
STATUS_NAME = f'{NAMESPACE}/rfnet_feature_node: features'
NODE_NAME = f'/{NAMESPACE}/rfnet_feature_node'
TOP_K = 256
MONO_CHANNELS = ['id_of_point', 'u_of_point', 'v_of_point', 'velocity_x_of_point', 'velocity_y_of_point']
FUSION_CHANNELS = ['id_of_point', 'camera_id_of_point', 'u_of_point', 'v_of_point', 'velocity_x_of_point',
                   'velocity_y_of_point']
# The calibration the camera_info tests publish: a 320x240 camera with barrel distortion.
K = np.array([[300.0, 0.0, 161.5], [0.0, 298.0, 118.25], [0.0, 0.0, 1.0]])
D = np.array([-0.21, 0.045, 1e-3, -5e-4, 0.0])


@pytest.fixture(scope='module')
def node():
    """The feature node in /front_end with publish_vins_features, and a probe subscribed to its outputs."""
    require_install()
    from sensor_msgs.msg import Image, PointCloud

    args = ('--ros-args', '--params-file', str(SHARE / 'config' / 'lite.yaml'), '-p', f'top_k:={TOP_K}',
            '-p', 'diagnostics_period:=0.5', '-p', 'publish_vins_features:=true')
    yield from run_feature_node(args, Image, 'image', f'/{NAMESPACE}', outputs=((PointCloud, 'feature'),),
                                probe_name='rfnet_front_end_probe')


def topic(name: str) -> str:
    return f'{NAMESPACE}/{name}'


def send(node, image, clock_rewind=False, camera_info=None):
    """Publish a frame (after ``camera_info`` with the same stamp, as camera drivers do); returns (header,
    keypoints, timing) once its keypoints and timing arrived."""
    from sensor_msgs.msg import CameraInfo
    process, probe, clock = node
    if clock_rewind:
        clock.rewind()  # a backwards time jump: the node restarts matching (every track ends)
    stamp = clock.next()
    if camera_info is not None:
        camera_info.header.stamp = stamp
        probe.publisher(CameraInfo, topic('camera_info')).publish(camera_info)
    header = probe.publish_image(image, stamp, topic=topic('image'))
    keypoints = probe.wait_for_stamp(topic('keypoints'), header.stamp, process)
    timing = probe.wait_for_stamp(topic('timing'), header.stamp, process)
    return header, keypoints, timing


def points_of(keypoints) -> np.ndarray:
    return np.column_stack([np.asarray(keypoints.x), np.asarray(keypoints.y)])


def diagnostics(node, predicate, what, since=0.0, timeout=30.0) -> dict[str, str]:
    """The values of the newest status of this node (received after ``since``) that satisfies ``predicate``."""
    process, probe, _ = node

    def find():
        for array in reversed(probe.received('/diagnostics', since)):
            for status in array.status:
                if status.name == STATUS_NAME and predicate(status):
                    return status
        return None
    status = probe.wait_for(find, what, timeout, process)
    return {kv.key: kv.value for kv in status.values} | {'_level': status.level, '_message': status.message}


def set_parameters(node, **values):
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter
    _, probe, _ = node
    request = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
    results = probe.call(SetParameters, f'{NODE_NAME}/set_parameters', request).results
    assert all(r.successful for r in results), [r.reason for r in results]


# --- Track ids ---------------------------------------------------------------------------------------------
def test_track_ids_follow_the_points_of_a_shifted_photo(node):
    """Twelve crops of a photo, each 3 px further right and 2 px further down: every keypoint matched to the
    previous frame keeps its id, and the ids follow the physical points."""
    process, probe, _ = node
    image = photo()
    step = np.array([3.0, 2.0])
    frames = []
    for i in range(12):
        header, keypoints, timing = send(node, crop(image, 200 - 3 * i, 150 - 2 * i), clock_rewind=(i == 0))
        assert len(keypoints.track_ids) == len(keypoints.x) > 0
        if i:
            assert timing.inlier_ratio > 0.95 and timing.num_matches > 0.8 * len(keypoints.x)
        frames.append((header, keypoints))
    errors = []
    for k, ((_, earlier), (header, later)) in enumerate(zip(frames, frames[1:]), start=1):
        ids0, ids1 = np.asarray(earlier.track_ids), np.asarray(later.track_ids)
        assert len(np.unique(ids1)) == len(ids1), 'an id given to two keypoints'
        shared, i0, i1 = np.intersect1d(ids0, ids1, return_indices=True)
        matches = probe.wait_for_stamp(topic('matches'), header.stamp, process)
        # Ids pass exactly along the published matches; every other keypoint has an id never seen before.
        assert sorted(zip(i0.tolist(), i1.tolist())) == sorted(zip(matches.previous_index, matches.current_index))
        fresh = np.setdiff1d(np.arange(len(ids1)), i1)
        seen = np.concatenate([np.asarray(msg.track_ids) for _, msg in frames[:k]])
        assert not np.isin(ids1[fresh], seen).any(), 'a new track reused an id'
        motion = points_of(later)[i1] - points_of(earlier)[i0]
        errors.append(np.linalg.norm(motion - step, axis=1))
    errors = np.concatenate(errors)
    assert np.mean(errors < 1.0) >= 0.97, f'{np.mean(errors < 1.0):.1%} of inherited ids moved with the photo'
    first_ids = np.asarray(frames[0][1].track_ids)
    assert np.isin(np.asarray(frames[-1][1].track_ids), first_ids).sum() >= 100, 'few tracks live 12 frames'

    values = diagnostics(node, lambda s: float(dict((kv.key, kv.value) for kv in s.values)
                                                .get('tracks_alive_after_10_share', 0)) > 0,
                         'diagnostics with tracks alive after 10 frames')
    assert float(values['tracks_alive_after_10_share']) > 0.5
    assert int(values['tracks_started']) >= len(first_ids)
    assert float(values['track_length_active_mean']) > 5
    assert float(values['track_length_mean']) >= 1
    assert float(values['inlier_ratio_mean']) > 0.9 and values['geometric_check'] == 'fundamental'
    # No camera_info yet: pixels only, said once, and no VINS output.
    assert values['camera_info'] == 'none received: outputs in pixels'
    assert process.output.count(f'no camera_info on /{NAMESPACE}/camera_info') == 1, process.output
    assert not probe.received(topic('feature'))


# --- Geometric check ---------------------------------------------------------------------------------------
def wrong_matches(node, first, second, expected_motion) -> tuple[int, int, float]:
    """(wrong, correct) published matches from ``first`` to ``second`` and the timing's inlier ratio."""
    process, probe, _ = node
    _, keypoints0, _ = send(node, first)
    header, keypoints1, timing = send(node, second)
    matches = probe.wait_for_stamp(topic('matches'), header.stamp, process)
    p, c = np.asarray(matches.previous_index, np.int64), np.asarray(matches.current_index, np.int64)
    points0 = points_of(keypoints0)[p]
    wrong = np.linalg.norm(points_of(keypoints1)[c] - points0 - expected_motion(points0), axis=1) > 3.0
    # Track ids pass along the published matches only.
    ids0, ids1 = np.asarray(keypoints0.track_ids), np.asarray(keypoints1.track_ids)
    assert np.array_equal(ids1[c], ids0[p])
    assert not np.isin(np.delete(ids1, c), ids0).any(), 'an id passed along a rejected match'
    return int(wrong.sum()), int((~wrong).sum()), timing.inlier_ratio


def test_geometric_check_removes_injected_wrong_matches(node):
    """Wrong matches injected by pasting copies of small patches 12+ px up or down from where they were.

    A camera moving sideways past two layers (fundamental matrix): most are removed; a flat photo moved by
    (5, -3) px (homography): all are. The same frames with the check off show what was injected.
    """
    image = photo()

    def layer_motion(points):
        return np.where(points[:, :1] < 160 - 12, (12.0, 0.0), (2.0, 0.0))
    try:
        totals = {}
        for check in ('off', 'fundamental'):
            set_parameters(node, geometric_check=check)
            totals[check] = np.zeros(2)
            for seed in (4, 5, 6):
                second = relocate_patches(layered(image, 1), np.random.default_rng(seed))
                wrong, right, ratio = wrong_matches(node, layered(image, 0), second, layer_motion)
                totals[check] += (wrong, right)
                assert (ratio == 1.0) if check == 'off' else (ratio < 1.0)
        (wrong_off, right_off), (wrong_checked, right_checked) = totals['off'], totals['fundamental']
        assert wrong_off >= 15 and wrong_checked <= wrong_off / 3, (wrong_off, wrong_checked)
        assert right_checked >= 0.97 * right_off

        for check in ('off', 'homography'):
            set_parameters(node, geometric_check=check)
            for seed in (4, 5, 6):
                second = relocate_patches(crop(image, 195, 153), np.random.default_rng(seed))
                wrong, _, _ = wrong_matches(node, crop(image, 200, 150), second, lambda p: (5.0, -3.0))
                assert (wrong >= 5) if check == 'off' else (wrong == 0), (check, seed, wrong)
        values = diagnostics(node, lambda s: True, 'a diagnostics message', since=time.monotonic())
        assert values['geometric_check'] == 'homography'
    finally:
        set_parameters(node, geometric_check='fundamental')


# --- Debug image -------------------------------------------------------------------------------------------
def test_debug_image_is_drawn_only_while_someone_subscribes(node):
    from sensor_msgs.msg import Image
    process, probe, _ = node
    image = photo()
    send(node, crop(image, 100, 100))
    before = int(diagnostics(node, lambda s: True, 'a diagnostics message', since=time.monotonic())
                 ['debug_images_published'])
    received = []
    subscription = probe.node.create_subscription(Image, topic('debug_image'), received.append, 10)
    try:
        probe.wait_for(lambda: probe.node.count_subscribers(f'/{NAMESPACE}/debug_image') > 0, 'the subscription')
        time.sleep(1.0)  # the node's publisher sees the new subscriber
        header, keypoints, _ = send(node, crop(image, 103, 101))
        debug = probe.wait_for(lambda: next((m for m in received if same_stamp(m.header.stamp, header.stamp)),
                                            None), 'the debug image')
        assert (debug.width, debug.height, debug.encoding, debug.step) == (320, 240, 'bgr8', 960)
        assert debug.header.frame_id == header.frame_id
        drawn = np.frombuffer(bytes(debug.data), np.uint8).reshape(240, 320, 3)
        colored = np.abs(drawn.astype(int) - drawn.mean(axis=2, keepdims=True)).sum(axis=2) > 60
        assert colored.sum() > 3 * len(keypoints.x), 'keypoints are drawn in colour on the grey frame'
    finally:
        probe.node.destroy_subscription(subscription)
    after = int(diagnostics(node, lambda s: True, 'a diagnostics message', since=time.monotonic())
                ['debug_images_published'])
    assert after > before
    probe.wait_for(lambda: probe.node.count_subscribers(f'/{NAMESPACE}/debug_image') == 0, 'no subscriber')
    time.sleep(1.0)
    for i in range(2):
        send(node, crop(image, 106 + 3 * i, 102))
    final = int(diagnostics(node, lambda s: True, 'a diagnostics message', since=time.monotonic())
                ['debug_images_published'])
    assert final == after, 'debug images drawn without a subscriber'


# --- camera_info and the VINS output -----------------------------------------------------------------------
def camera_info_message(width=320, height=240, model='plumb_bob', d=D):
    from sensor_msgs.msg import CameraInfo
    msg = CameraInfo(width=width, height=height, distortion_model=model, d=[float(v) for v in d],
                     k=[float(v) for v in K.ravel()])
    msg.header.frame_id = 'test_camera'
    return msg


def publish_camera_info(node, msg, until, what):
    """Publish ``msg`` every 0.2 s until ``until()`` is true (the node's best-effort subscription may miss the
    first ones while it discovers the publisher)."""
    from sensor_msgs.msg import CameraInfo
    process, probe, _ = node
    publisher = probe.publisher(CameraInfo, topic('camera_info'))
    probe.wait_for(lambda: publisher.get_subscription_count() > 0, 'the node to subscribe to camera_info',
                   process=process)
    deadline = time.monotonic() + 30
    while not until():
        assert time.monotonic() < deadline, f'timed out waiting for {what}'
        publisher.publish(msg)
        time.sleep(0.2)


def channels(cloud) -> dict[str, np.ndarray]:
    return {c.name: np.asarray(c.values, np.float64) for c in cloud.channels}


def test_vins_feature_cloud_is_consistent_with_the_camera_info(node):
    from rfnet_ros.tracking.vins import ID_MODULUS
    process, probe, _ = node
    image = photo()
    info = camera_info_message()
    publish_camera_info(node, info, lambda: 'camera_info received: plumb_bob, 320x240' in process.output,
                        'the node to log the camera_info')
    sent = []
    for i in range(3):
        header, keypoints, _ = send(node, crop(image, 300 - 4 * i, 120 + i), clock_rewind=(i == 0), camera_info=info)
        sent.append((header, keypoints))
    first_stamp = sent[0][0].stamp
    clouds = [probe.wait_for_stamp(topic('feature'), h.stamp, process) for h, _ in sent[1:]]
    # The first frame after the restart has no track seen twice: VINS-Mono's layout publishes nothing for it.
    assert not [m for m in probe.received(topic('feature')) if same_stamp(m.header.stamp, first_stamp)]
    for (header, keypoints), cloud in zip(sent[1:], clouds):
        assert cloud.header.frame_id == header.frame_id
        assert [c.name for c in cloud.channels] == MONO_CHANNELS
        values = channels(cloud)
        count = len(cloud.points)
        assert count > 50 and all(len(v) == count for v in values.values())
        points = np.array([[p.x, p.y, p.z] for p in cloud.points])
        assert np.all(points[:, 2] == 1.0)
        # u, v are the keypoints' pixels; (x, y) are where OpenCV's plumb-bob model projects back to them.
        ids = np.asarray(keypoints.track_ids) % ID_MODULUS
        index = np.array([np.flatnonzero(ids == v)[0] for v in values['id_of_point']])
        np.testing.assert_allclose(values['u_of_point'], np.asarray(keypoints.x)[index], atol=1e-4)
        np.testing.assert_allclose(values['v_of_point'], np.asarray(keypoints.y)[index], atol=1e-4)
        projected = cv2.projectPoints(points, np.zeros(3), np.zeros(3), K, D)[0].reshape(-1, 2)
        np.testing.assert_allclose(projected, np.column_stack([values['u_of_point'], values['v_of_point']]),
                                   atol=2e-3)
    # Velocities: the normalised motion of each track since the previous frame over the stamp difference.
    h1, h2 = sent[1][0], sent[2][0]
    dt = (h2.stamp.sec - h1.stamp.sec) + (h2.stamp.nanosec - h1.stamp.nanosec) * 1e-9
    before = dict(zip(channels(clouds[0])['id_of_point'], [(p.x, p.y) for p in clouds[0].points]))
    after = channels(clouds[1])
    moved = [(np.subtract((p.x, p.y), before[i]) / dt, (vx, vy))
             for i, p, vx, vy in zip(after['id_of_point'], clouds[1].points, after['velocity_x_of_point'],
                                     after['velocity_y_of_point']) if i in before]
    assert len(moved) > 50
    expected, published = (np.array(v) for v in zip(*moved))
    np.testing.assert_allclose(published, expected, atol=1e-3)
    assert np.median(published[:, 0]) > 0.1  # 4 px per 0.1 s at fx 300: about 0.13 per second
    values = diagnostics(node, lambda s: True, 'a diagnostics message', since=time.monotonic())
    assert values['camera_info'] == 'plumb_bob 320x240'


def test_fusion_layout_and_camera_id(node):
    process, probe, _ = node
    image = photo()
    set_parameters(node, vins_layout='fusion', vins_camera_id=2)
    try:
        header, keypoints, _ = send(node, crop(image, 250, 130), camera_info=camera_info_message())
        cloud = probe.wait_for_stamp(topic('feature'), header.stamp, process)
    finally:
        set_parameters(node, vins_layout='mono', vins_camera_id=0)
    names = [c.name for c in cloud.channels]
    assert names[:6] == FUSION_CHANNELS
    # Three zero channels after them: VINS-Fusion reads positions 6..8 whenever there are more than five.
    assert len(names) == 9 and not any(channels(cloud)[n].any() for n in names[6:])
    values = channels(cloud)
    assert len(cloud.points) == len(keypoints.x), 'the fusion layout publishes every track, new ones too'
    assert np.all(values['camera_id_of_point'] == 2.0)


def test_camera_info_that_does_not_fit_is_reported(node):
    process, probe, _ = node
    image = photo()
    try:
        wrong_size = camera_info_message(width=640, height=480)
        for attempt in range(10):  # the first camera_info may be missed while the subscription matches
            header, _, _ = send(node, crop(image, 120 + attempt, 90), camera_info=wrong_size)
            if 'camera_info not used' in process.output:
                break
        values = diagnostics(node, lambda s: 'camera_info not used' in s.message, 'a camera_info warning')
        from diagnostic_msgs.msg import DiagnosticStatus
        assert values['_level'] == DiagnosticStatus.WARN
        assert 'camera_info is for 640x480 images, the images are 320x240' in values['camera_info']
        assert 'camera_info not used: camera_info is for 640x480 images, the images are 320x240' in process.output
        time.sleep(0.5)
        assert not [m for m in probe.received(topic('feature')) if same_stamp(m.header.stamp, header.stamp)]

        publish_camera_info(node, camera_info_message(model='kannala_brandt'),
                            lambda: 'camera_info rejected' in process.output, 'the rejection warning')
        values = diagnostics(node, lambda s: 'camera_info rejected' in s.message, 'a rejected camera_info')
        assert "distortion model 'kannala_brandt' is not one of" in values['camera_info']
    finally:
        for attempt in range(3):
            send(node, crop(image, 123 + attempt, 90), camera_info=camera_info_message())
    values = diagnostics(node, lambda s: 'camera_info' not in s.message, 'diagnostics without the warning',
                         since=time.monotonic())
    assert values['camera_info'] == 'plumb_bob 320x240'
    assert process.running()
