"""The node's options for VIO users over the real middleware: a static mask, and matching predicted by the gyro
from the `imu` topic (with camera_info), with bad IMU samples counted and reported.

ROS TEST: needs the install tree (bash scripts/setup_env.sh), the photos (bash scripts/fetch_data.sh) and the
shipped weights. One node runs for the module in the namespace /vio_options.
"""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from ros_harness import SHARE, run_feature_node
from test_front_end_options import SIZE, rotated, training_photo

NAMESPACE = 'vio_options'
STATUS_NAME = f'{NAMESPACE}/rfnet_feature_node: features'
FOCAL, STEP_DEG, PERIOD_NS = 300.0, 10.0, 100_000_000
K = np.array([[FOCAL, 0.0, SIZE[1] / 2 - 0.5], [0.0, FOCAL, SIZE[0] / 2 - 0.5], [0.0, 0.0, 1.0]])
MASKED_FROM_X = 240  # the right 80 columns are the robot's body


@pytest.fixture(scope='module')
def node(tmp_path_factory):
    from sensor_msgs.msg import Image

    mask = np.full(SIZE, 255, np.uint8)
    mask[:, MASKED_FROM_X:] = 0
    path = tmp_path_factory.mktemp('mask') / 'mask.png'
    cv2.imwrite(str(path), mask)
    args = ('--ros-args', '--params-file', str(SHARE / 'config' / 'lite.yaml'), '-p', 'top_k:=256',
            '-p', 'diagnostics_period:=0.2', '-p', f'mask_image:={path}', '-p', 'match_prediction:=imu',
            '-p', 'match_search_radius:=10.0', '-p', 'geometric_check:=homography')
    yield from run_feature_node(args, Image, 'image', f'/{NAMESPACE}', probe_name='rfnet_vio_options_probe')


def camera_info(stamp):
    from sensor_msgs.msg import CameraInfo
    info = CameraInfo(width=SIZE[1], height=SIZE[0], distortion_model='plumb_bob')
    info.header.stamp = stamp
    info.k = K.ravel().tolist()
    info.d = [0.0] * 5
    info.p = [FOCAL, 0.0, K[0, 2], 0.0, 0.0, FOCAL, K[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def imu(stamp_ns: int, rate_z: float):
    from sensor_msgs.msg import Imu
    msg = Imu()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.angular_velocity.z = rate_z
    return msg


def find_status(probe, predicate):
    """The values of the newest status of the node that satisfy ``predicate``, or None."""
    for array in reversed(probe.received('/diagnostics')):
        for status in array.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name == STATUS_NAME and predicate(values):
                return values
    return None


def last_status(node, predicate, what):
    process, probe, _ = node
    return probe.wait_for(lambda: find_status(probe, predicate), what, 60, process)


def connect_gyro(node, imu_pub, before_ns: int) -> None:
    """Send still-gyro samples stamped up to 1 s before ``before_ns`` until the node reports one received (the
    best-effort subscription drops samples sent before it has matched the publisher)."""
    process, probe, _ = node
    deadline = time.monotonic() + 60
    sent = 0
    while time.monotonic() < deadline and sent < 1000:
        imu_pub.publish(imu(before_ns - 1_000_000_000 + sent * 1_000_000, 0.0))
        sent += 1
        if find_status(probe, lambda v: int(v.get('imu_samples_received', 0)) > 0):
            return
        time.sleep(0.05)
    pytest.fail(f'no imu sample reached the node in {sent} sent; node output:\n{process.output}')


def test_masked_keypoints_are_never_published_and_the_gyro_predicts_a_fast_roll(node):
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import CameraInfo, Imu
    photo = training_photo()
    process, probe, clock = node
    imu_pub = probe.publisher(Imu, f'{NAMESPACE}/imu', depth=500)
    info_pub = probe.publisher(CameraInfo, f'{NAMESPACE}/camera_info')
    probe.wait_for(lambda: imu_pub.get_subscription_count() > 0, 'the node to subscribe to imu', 30, process)
    rate = -np.deg2rad(STEP_DEG) / (PERIOD_NS * 1e-9)  # the image turns by cv2's -STEP_DEG per frame
    start = clock.next()
    start_ns = start.sec * 1_000_000_000 + start.nanosec
    connect_gyro(node, imu_pub, start_ns)
    frames = 4
    for k in range(frames * 10 + 1):  # 100 Hz gyro covering every frame interval, sent before the frames
        imu_pub.publish(imu(start_ns + k * PERIOD_NS // 10, rate))
    imu_pub.publish(imu(start_ns + frames * PERIOD_NS + 1, float('nan')))  # a bad sample: counted
    # The samples of one publisher arrive in order: once the last one is counted, all have arrived.
    last_status(node, lambda v: int(v['imu_samples_rejected']) >= 1, 'the NaN imu sample counted')
    keypoints = []
    for i in range(frames):
        stamp_ns = start_ns + i * PERIOD_NS
        stamp = Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
        info_pub.publish(camera_info(stamp))
        header = probe.publish_image(rotated(photo, -STEP_DEG * i)[0], stamp, topic=f'{NAMESPACE}/image')
        keypoints.append(probe.wait_for_stamp(f'{NAMESPACE}/keypoints', header.stamp, process))
    for msg in keypoints:
        assert len(msg.x) > 20 and max(msg.x) < MASKED_FROM_X - 0.5  # none where the mask is 0
    status = last_status(node, lambda v: int(v['frames_predicted']) >= frames - 1,
                         f'{frames - 1} frames matched with the gyro\'s prediction')
    assert status['match_prediction'] == 'imu' and status['prediction_fallbacks'] == '0', status
    assert int(status['imu_samples_received']) >= frames * 10 + 2, status
    assert status['mask'] == '320x240, used'
    assert 'imu sample rejected: angular velocity is not three finite numbers' in process.output
    matches = probe.received(f'{NAMESPACE}/matches')
    assert len(matches) >= frames - 1 and all(len(m.current_index) > 10 for m in matches[-(frames - 1):])
