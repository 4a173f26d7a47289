"""Integration tests of rfnet_stereo_node: the installed stereo_node executable over the real middleware.

ROS TEST: needs `bash scripts/setup_env.sh`, `bash scripts/fetch_data.sh` and `source scripts/env.sh`, and the
shipped weights. One node runs for the module (config/stereo.yaml, a smaller top_k, VINS output on); a probe
publishes the rendered stereo pair of test/stereo_scene.py (two depth layers of real photographs, moving
sideways) with the camera_infos of a rectified rig, one pair at a time, and waits (bounded) for its outputs.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import stereo_scene as scene
from ros_harness import SHARE, STARTUP_TIMEOUT, Probe, StampClock, executable, require_install, same_stamp, stop_cleanly
from test_stereo import textures

from rfnet_ros.tracking.stereo import NO_TRACK

NODE_NAME = 'rfnet_stereo_node'
STATUS_NAME = f'{NODE_NAME}: stereo features'
STALL_TIMEOUT = 3.0
WARN, ERROR = b'\x01', b'\x02'  # diagnostic_msgs/DiagnosticStatus levels (a byte)
NODE_ARGS = ('--ros-args', '--params-file', str(SHARE / 'config' / 'stereo.yaml'), '-p', 'top_k:=256',
             '-p', 'diagnostics_period:=0.5', '-p', 'publish_vins_features:=true',
             '-p', f'stall_timeout:={STALL_TIMEOUT}')
FRAMES = 4


@pytest.fixture(scope='module')
def node():
    """The stereo node and a probe subscribed to its outputs; SIGINT must end it with status 0."""
    require_install()
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import CameraInfo, Image, PointCloud

    from rfnet_ros.msg import FrameTiming, Keypoints, Matches, StereoMatches

    process = executable('stereo_node', *NODE_ARGS)
    probe = Probe(name='rfnet_stereo_test_probe')
    try:
        outputs = ((Keypoints, 'left/keypoints'), (Keypoints, 'right/keypoints'), (Matches, 'left/matches'),
                   (StereoMatches, 'stereo_matches'), (FrameTiming, 'timing'), (PointCloud, 'feature'))
        for msg_type, topic in outputs:
            probe.subscribe(msg_type, topic)
        probe.subscribe(DiagnosticArray, '/diagnostics')
        images = [probe.publisher(Image, f'{side}/image_rect') for side in ('left', 'right')]
        for side in ('left', 'right'):
            probe.publisher(CameraInfo, f'{side}/camera_info')
        probe.wait_for(lambda: all(pub.get_subscription_count() > 0 for pub in images),
                       'the node to subscribe to both images', STARTUP_TIMEOUT, process)
        probe.wait_for(lambda: all(probe.node.count_publishers(f'/{t}') > 0 for _, t in outputs),
                       "the node's publishers", 30, process)
        time.sleep(1.0)
        yield process, probe, StampClock()
    finally:
        stop_cleanly(process, probe)


def publish_camera_infos(probe, stamp, right_baseline: float = scene.BASELINE) -> None:
    from sensor_msgs.msg import CameraInfo

    for side, baseline in (('left', 0.0), ('right', right_baseline)):
        msg = CameraInfo(**scene.camera_info_fields(side == 'right', baseline))
        msg.header.stamp, msg.header.frame_id = stamp, f'{side}_optical'
        probe.publisher(CameraInfo, f'{side}/camera_info').publish(msg)


def send_pair(node, pair, right_baseline: float = scene.BASELINE):
    """Publish both camera_infos and both images with one stamp; returns the stamp."""
    _, probe, clock = node
    stamp = clock.next()
    publish_camera_infos(probe, stamp, right_baseline)
    time.sleep(0.05)  # camera_info first, as drivers publish it beside each image
    probe.publish_image(pair.left, stamp, frame_id='left_optical', topic='left/image_rect')
    probe.publish_image(pair.right, stamp, frame_id='right_optical', topic='right/image_rect')
    return stamp


def outputs_of(node, stamp, topics=('left/keypoints', 'right/keypoints', 'stereo_matches', 'timing', 'feature')):
    process, probe, _ = node
    return {topic: probe.wait_for_stamp(topic, stamp, process) for topic in topics}


def statuses(probe, since: float):
    return [s for msg in probe.received('/diagnostics', since) for s in msg.status if s.name == STATUS_NAME]


def wait_for_status(node, predicate, what, timeout=30.0):
    process, probe, _ = node
    start = time.monotonic()
    return probe.wait_for(lambda: next((s for s in reversed(statuses(probe, start)) if predicate(s)), None),
                          what, timeout, process)


@pytest.fixture(scope='module')
def sequence(node):
    """[(pair, outputs by topic)] of FRAMES pairs of the scene moving sideways."""
    wall, board = textures()
    frames = []
    for t in range(FRAMES):
        pair = scene.render(wall, board, t)
        stamp = send_pair(node, pair)
        topics = ('left/keypoints', 'right/keypoints', 'stereo_matches', 'timing', 'feature') + \
            (('left/matches',) if t else ())
        frames.append((pair, outputs_of(node, stamp, topics)))
    return frames


def test_stereo_matches_lie_on_the_row_at_the_true_disparity(sequence):
    for t, (pair, out) in enumerate(sequence):
        left, right, stereo = out['left/keypoints'], out['right/keypoints'], out['stereo_matches']
        assert left.header.frame_id == stereo.header.frame_id == right.header.frame_id == 'left_optical'
        left_index, right_index = np.asarray(stereo.left_index), np.asarray(stereo.right_index)
        assert len(left_index) == len(right_index) == len(stereo.disparity) >= 0.4 * len(left.x)
        left_points = np.column_stack([left.x, left.y])[left_index]
        right_points = np.column_stack([right.x, right.y])[right_index]
        share, line = scene.disparity_report(pair, left_points, right_points)
        print(f'pair {t}: {len(left.x)} left, {len(right.x)} right keypoints; {line}')
        assert share >= 0.9, line
        np.testing.assert_allclose(stereo.disparity, left_points[:, 0] - right_points[:, 0], atol=1e-3)
        truth = scene.true_disparity(pair, left_points)
        assert (truth == scene.FAR).sum() >= 20 and (truth == scene.NEAR).sum() >= 20, line
        assert out['timing'].num_keypoints == len(left.x)


def test_right_keypoints_carry_their_partners_ids_and_left_ids_go_on(sequence):
    for t, (_, out) in enumerate(sequence):
        left, right, stereo = out['left/keypoints'], out['right/keypoints'], out['stereo_matches']
        left_ids, right_ids = np.asarray(left.track_ids), np.asarray(right.track_ids)
        np.testing.assert_array_equal(right_ids[np.asarray(stereo.right_index)],
                                      left_ids[np.asarray(stereo.left_index)])
        unmatched = np.setdiff1d(np.arange(len(right_ids)), stereo.right_index)
        assert len(unmatched) and (right_ids[unmatched] == NO_TRACK).all()
        if t:
            # left/matches (t-1 -> t): a matched keypoint keeps the previous keypoint's id.
            matches, previous = out['left/matches'], sequence[t - 1][1]['left/keypoints']
            assert same_stamp(matches.previous_stamp, previous.header.stamp)
            current = np.asarray(matches.current_index)
            np.testing.assert_array_equal(left_ids[current],
                                          np.asarray(previous.track_ids)[np.asarray(matches.previous_index)])
            assert len(current) >= 0.6 * len(left_ids)


def test_feature_cloud_holds_both_cameras_with_shared_ids(sequence):
    for t, (_, out) in enumerate(sequence):
        cloud, left, right, stereo = out['feature'], out['left/keypoints'], out['right/keypoints'], \
            out['stereo_matches']
        channels = {c.name: np.asarray(c.values) for c in cloud.channels}
        assert list(channels)[:6] == ['id_of_point', 'camera_id_of_point', 'u_of_point', 'v_of_point',
                                      'velocity_x_of_point', 'velocity_y_of_point']
        camera = channels['camera_id_of_point']
        points = np.array([[p.x, p.y, p.z] for p in cloud.points])
        assert (camera == 0).sum() == len(left.x) and (camera == 1).sum() == len(stereo.right_index)
        ids = channels['id_of_point']
        np.testing.assert_array_equal(ids[camera == 0], np.asarray(left.track_ids, np.float32))
        np.testing.assert_array_equal(ids[camera == 1],
                                      np.asarray(right.track_ids, np.float32)[np.asarray(stereo.right_index)])
        assert set(ids[camera == 1]) <= set(ids[camera == 0])
        # Each point in undistorted normalised coordinates of its own (rectified) camera.
        for cam in (0, 1):
            u, v = channels['u_of_point'][camera == cam], channels['v_of_point'][camera == cam]
            expected = np.column_stack([(u - scene.WIDTH / 2) / scene.FOCAL, (v - scene.HEIGHT / 2) / scene.FOCAL])
            np.testing.assert_allclose(points[camera == cam, :2], expected, atol=1e-5)
        np.testing.assert_allclose(points[:, 2], 1.0)
        if t:
            assert (channels['velocity_x_of_point'][camera == 1] != 0).mean() >= 0.5


def test_a_camera_info_without_a_baseline_is_reported_and_the_node_goes_on(node, sequence):
    wall, board = textures()
    stamp = send_pair(node, scene.render(wall, board, FRAMES), right_baseline=0.0)
    out = outputs_of(node, stamp, ('left/keypoints', 'stereo_matches'))
    assert len(out['left/keypoints'].x) > 0
    status = wait_for_status(node, lambda s: 'no baseline' in s.message, 'a status naming the missing baseline')
    assert status.level == WARN, status.message
    stamp = send_pair(node, scene.render(wall, board, FRAMES + 1))
    outputs_of(node, stamp, ('feature',))


def test_images_of_different_sizes_are_reported_and_the_left_tracks_go_on(node, sequence):
    import cv2

    process, probe, clock = node
    pair = scene.render(*textures(), 2)
    stamp = clock.next()
    publish_camera_infos(probe, stamp)
    probe.publish_image(pair.left, stamp, frame_id='left_optical', topic='left/image_rect')
    probe.publish_image(cv2.resize(pair.right, (160, 120)), stamp, frame_id='right_optical', topic='right/image_rect')
    out = outputs_of(node, stamp, ('left/keypoints', 'right/keypoints', 'stereo_matches'))
    assert len(out['left/keypoints'].x) > 0 and (out['right/keypoints'].image_width,
                                                 out['right/keypoints'].image_height) == (160, 120)
    assert len(out['stereo_matches'].left_index) == 0
    status = wait_for_status(node, lambda s: 'differ in size (320x240 and 160x120)' in s.message,
                             'a status naming the size mismatch')
    assert status.level == WARN and 'right camera_info' in status.message, status.message
    assert process.running()


def test_a_bad_right_image_is_rejected_counted_and_named(node, sequence):
    process, probe, clock = node
    probe.publish_image(None, clock.next(), frame_id='right_optical', topic='right/image_rect', encoding='yuv422',
                        width=320, height=240, step=640, data=bytes(640 * 240))
    status = wait_for_status(node, lambda s: 'rejected' in s.message and 'right: ' in s.message,
                             'a status naming the rejected right image')
    values = {kv.key: kv.value for kv in status.values}
    assert int(values['right_frames_rejected']) >= 1 and values['left_frames_rejected'] == '0'
    assert 'yuv422' in values['right_last_reject_reason']
    assert process.running()


def test_a_silent_right_camera_is_reported_warn_then_error(node, sequence):
    """Left images without right partners: no stereo output, and diagnostics say which camera is silent: WARN
    at first, ERROR once it has been silent for stall_timeout."""
    process, probe, clock = node
    wall, board = textures()
    send_pair(node, scene.render(wall, board, 0))  # the right camera's last image
    left_only = scene.render(wall, board, 1).left
    start = time.monotonic()
    warned = errored = None
    while time.monotonic() - start < STALL_TIMEOUT + 20 and errored is None:
        probe.publish_image(left_only, clock.next(), frame_id='left_optical', topic='left/image_rect')
        time.sleep(0.1)
        for status in statuses(probe, start):
            if 'right camera silent' in status.message:
                if status.level == WARN and warned is None:
                    warned = status
                elif status.level == ERROR:
                    errored = status
    assert warned is not None, [s.message for s in statuses(probe, start)]
    assert errored is not None, [s.message for s in statuses(probe, start)]
    assert 'stall_timeout' in errored.message and 'left' not in errored.message.split(';')[0].split('while')[0]
    values = {kv.key: kv.value for kv in errored.values}
    assert int(values['left_frames_received']) > int(values['right_frames_received'])
    assert process.running()
