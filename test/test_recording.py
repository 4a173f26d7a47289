"""Bags: rfnet-bag (video or image folder -> MCAP bag), the recorder, and a recorded run replayed through a
fresh node to the same messages.

The bag-making tests need no ROS graph; the recording test runs the installed feature_node, record and
player executables over the real middleware (ROS TEST: bash scripts/setup_env.sh, the held-out photos).
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from ros_harness import SHARE, STARTUP_TIMEOUT, Probe, StampClock, crop, executable, photo, require_install

from rfnet_ros.cli.make_bag import main as make_bag_main
from rfnet_ros.cli.make_bag import make_bag
from rfnet_ros.frame_sources import frames
from rfnet_ros.stream_settings import StreamSettings
from rfnet_ros.tracking.camera import read_calibration

K = [300.0, 0.0, 161.5, 0.0, 298.0, 118.25, 0.0, 0.0, 1.0]
D = [-0.21, 0.045, 1e-3, -5e-4, 0.0]


def calibration_file(path: Path, width=320, height=240) -> Path:
    """A calibration in the camera_calibration_parsers YAML format (as the camera_calibration package writes)."""
    path.write_text(yaml.safe_dump({
        'image_width': width, 'image_height': height, 'camera_name': 'test_camera',
        'camera_matrix': {'rows': 3, 'cols': 3, 'data': K},
        'distortion_model': 'plumb_bob',
        'distortion_coefficients': {'rows': 1, 'cols': 5, 'data': D},
        'rectification_matrix': {'rows': 3, 'cols': 3, 'data': [1, 0, 0, 0, 1, 0, 0, 0, 1]},
        'projection_matrix': {'rows': 3, 'cols': 4, 'data': K[:3] + [0] + K[3:6] + [0] + K[6:] + [0]}}))
    return path


def bag_messages(path: Path) -> dict[str, list]:
    """Every message of a bag, deserialized, per topic in order (rosbags)."""
    from rosbags.highlevel import AnyReader

    from rfnet_ros.bags import typestore

    store = typestore()
    out: dict[str, list] = {}
    with AnyReader([path], default_typestore=store) as reader:
        for connection, _, raw in reader.messages():
            out.setdefault(connection.topic, []).append(reader.deserialize(raw, connection.msgtype))
    return out


def image_folder(folder: Path, count=3) -> list[np.ndarray]:
    folder.mkdir()
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(count)]
    for i, image in enumerate(images):
        cv2.imwrite(str(folder / f'{i:03d}.png'), image)
    return images


# --- rfnet-bag ---------------------------------------------------------------------------------------------
def test_image_folder_to_an_mcap_bag_and_back(tmp_path):
    images = image_folder(tmp_path / 'images')
    calibration = calibration_file(tmp_path / 'calibration.yaml', width=32, height=24)
    assert make_bag_main([str(tmp_path / 'images'), str(tmp_path / 'bag'), '--rate', '20', '--start', '5',
                          '--topic', '/cam0/image_raw', '--camera-info', str(calibration)]) == 0
    assert [p.suffix for p in (tmp_path / 'bag').iterdir() if p.name != 'metadata.yaml'] == ['.mcap']
    got = list(frames(tmp_path / 'bag', bag_topic='/cam0/image_raw'))
    assert [stamp for _, stamp in got] == [5_000_000_000, 5_050_000_000, 5_100_000_000]
    for (frame, _), image in zip(got, images):
        np.testing.assert_array_equal(frame, image)
    messages = bag_messages(tmp_path / 'bag')
    infos = messages['/cam0/camera_info']
    assert [i.header.stamp.nanosec for i in infos] == [i.header.stamp.nanosec for i in messages['/cam0/image_raw']]
    assert infos[0].k.tolist() == K and infos[0].d.tolist() == D and (infos[0].width, infos[0].height) == (32, 24)
    assert messages['/cam0/image_raw'][0].encoding == 'bgr8'


def test_compressed_mono_bag_of_a_video(tmp_path):
    video = Path(__file__).resolve().parents[1] / 'data' / 'video' / 'vtest.avi'
    if not video.is_file():
        pytest.fail(f'{video} missing: run bash scripts/fetch_data.sh', pytrace=False)
    count = make_bag(video, tmp_path / 'bag', StreamSettings('/camera/image_raw', max_frames=4), compressed='png',
                     mono=True, resize=(160, 120), start_ns=10**9)
    assert count == 4
    got = list(frames(tmp_path / 'bag', mono=True))
    expected = list(frames(video, mono=True, resize=(160, 120)))[:4]
    for (frame, _), (image, _) in zip(got, expected):
        np.testing.assert_array_equal(frame, image)  # png is lossless
    assert set(bag_messages(tmp_path / 'bag')) == {'/camera/image_raw/compressed'}


def test_bad_bag_requests_are_refused(tmp_path, capsys):
    image_folder(tmp_path / 'images')
    (tmp_path / 'taken').mkdir()
    assert make_bag_main([str(tmp_path / 'images'), str(tmp_path / 'taken')]) == 1
    assert 'exists' in capsys.readouterr().err
    wrong = calibration_file(tmp_path / 'wrong.yaml', width=640, height=480)
    assert make_bag_main([str(tmp_path / 'images'), str(tmp_path / 'bag'), '--camera-info', str(wrong)]) == 1
    assert 'is for 640x480 images, the frames are 32x24' in capsys.readouterr().err
    assert make_bag_main([str(tmp_path / 'nothing'), str(tmp_path / 'bag2')]) == 1
    assert 'no such file' in capsys.readouterr().err


def test_read_calibration(tmp_path):
    fields = read_calibration(calibration_file(tmp_path / 'c.yaml'))
    assert fields['k'] == K and fields['d'] == D and fields['distortion_model'] == 'plumb_bob'
    assert (fields['width'], fields['height']) == (320, 240) and len(fields['p']) == 12
    (tmp_path / 'bad.yaml').write_text('image_width: 3\n')
    with pytest.raises(ValueError, match='no camera_matrix'):
        read_calibration(tmp_path / 'bad.yaml')


# --- Record, then replay -----------------------------------------------------------------------------------
RECORDED = ('keypoints', 'matches', 'timing', 'feature')


def start_node(namespace: str):
    return executable('feature_node', '--ros-args', '--params-file', str(SHARE / 'config' / 'lite.yaml'),
                      '-p', 'top_k:=128', '-p', 'publish_vins_features:=true', '-r', f'__ns:=/{namespace}')


def subscribe_outputs(probe, namespace):
    from sensor_msgs.msg import PointCloud

    from rfnet_ros.msg import FrameTiming, Keypoints, Matches
    for msg_type, name in zip((Keypoints, Matches, FrameTiming, PointCloud), RECORDED):
        probe.subscribe(msg_type, f'{namespace}/{name}')


def stamp_key(msg) -> tuple[int, int]:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def same_output(topic: str, a, b) -> None:
    """``a`` and ``b`` (rclpy or rosbags messages) carry the same output."""
    assert stamp_key(a) == stamp_key(b) and a.header.frame_id == b.header.frame_id, topic
    if topic == 'keypoints':
        for name in ('x', 'y', 'score', 'scale', 'orientation', 'descriptors'):
            np.testing.assert_allclose(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)), atol=1e-4,
                                       err_msg=name)
        assert list(a.track_ids) == list(b.track_ids)
    elif topic == 'matches':
        assert list(a.previous_index) == list(b.previous_index) and list(a.current_index) == list(b.current_index)
        assert (a.previous_stamp.sec, a.previous_stamp.nanosec) == (b.previous_stamp.sec, b.previous_stamp.nanosec)
    elif topic == 'timing':
        assert (a.num_keypoints, a.num_matches) == (b.num_keypoints, b.num_matches)
        assert a.inlier_ratio == pytest.approx(b.inlier_ratio)
    elif topic == 'feature':
        assert [c.name for c in a.channels] == [c.name for c in b.channels]
        for ca, cb in zip(a.channels, b.channels):
            np.testing.assert_allclose(np.asarray(ca.values), np.asarray(cb.values), atol=1e-4, err_msg=ca.name)
        np.testing.assert_allclose([(p.x, p.y, p.z) for p in a.points], [(p.x, p.y, p.z) for p in b.points],
                                   atol=1e-5)


def test_a_recorded_run_replays_to_the_same_messages(tmp_path):
    """Record a node's input and outputs; play the recorded images (with the calibration) into a fresh node;
    it publishes the messages that were recorded."""
    require_install()
    from sensor_msgs.msg import CameraInfo, Image

    calibration = calibration_file(tmp_path / 'calibration.yaml')
    info = CameraInfo(width=320, height=240, distortion_model='plumb_bob', d=D, k=K)
    image = photo()
    bag = tmp_path / 'run'
    node = start_node('rec_a')
    recorder = executable('record', str(bag), '--ros-args', '-r', '__ns:=/rec_a')
    probe = Probe(name='rfnet_recording_probe')
    received: dict[str, list] = {}
    try:
        subscribe_outputs(probe, 'rec_a')
        image_pub = probe.publisher(Image, 'rec_a/image')
        info_pub = probe.publisher(CameraInfo, 'rec_a/camera_info')
        probe.wait_for(lambda: image_pub.get_subscription_count() >= 2 and info_pub.get_subscription_count() >= 2,
                       'the node and the recorder to subscribe to the inputs', STARTUP_TIMEOUT, node)
        probe.wait_for(lambda: all(f'recording /rec_a/{name}' in recorder.output
                                   for name in ('image', 'camera_info', *RECORDED)),
                       'the recorder to subscribe to every topic', 60, recorder)
        time.sleep(1.5)  # the recorder's subscriptions match the node's publishers
        clock = StampClock()
        stamps = []
        for i in range(4):
            stamp = clock.next()
            info.header.stamp = stamp
            info.header.frame_id = 'rec_camera'
            info_pub.publish(info)  # as camera drivers do: camera_info with every frame
            header = probe.publish_image(crop(image, 260 - 4 * i, 140 + i), stamp, frame_id='rec_camera',
                                         topic='rec_a/image')
            probe.wait_for_stamp('rec_a/timing', header.stamp, node)
            stamps.append((stamp.sec, stamp.nanosec))
        for name in RECORDED:
            received[name] = [m for m in probe.received(f'rec_a/{name}') if stamp_key(m) in stamps]
        assert len(received['feature']) >= 2, 'no VINS output to record (camera_info missed?)'
        time.sleep(1.0)
    finally:
        probe.close()
        recorder_status = recorder.stop()
        node.stop()
    assert recorder_status == 0, recorder.output
    assert 'record: wrote' in recorder.output and 'Traceback' not in recorder.output

    # The bag holds what went over the wire: the same messages the probe received.
    recorded = bag_messages(bag)
    assert len(recorded['/rec_a/image']) == 4 and len(recorded['/rec_a/camera_info']) == 4
    for name in RECORDED:
        in_bag = [m for m in recorded.get(f'/rec_a/{name}', []) if stamp_key(m) in stamps]
        assert len(in_bag) == len(received[name]) > 0, name
        for a, b in zip(in_bag, received[name]):
            same_output(name, a, b)

    # Replay the recorded images, with their stamps and the calibration, into a fresh node.
    node = start_node('rec_b')
    probe = Probe(name='rfnet_replay_probe')
    try:
        subscribe_outputs(probe, 'rec_b')
        probe.wait_for(lambda: probe.node.count_subscribers('/rec_b/image') > 0, 'the replay node', STARTUP_TIMEOUT,
                       node)
        player = executable('player', str(bag), '--bag-topic', '/rec_a/image', '--bag-stamps', '--topic',
                            '/rec_b/image', '--camera-info', str(calibration), '--frame-id', 'rec_camera',
                            '--lockstep', '/rec_b/timing', '--wait-for-subscriber', '--rate', '5')
        assert player.wait(300) == 0, player.output
        assert 'published 4 frames' in player.output
        probe.wait_for(lambda: len(probe.received('rec_b/timing')) >= 4, 'the replayed frames\' outputs', 60, node)
        time.sleep(1.0)
        replayed = {name: probe.received(f'rec_b/{name}') for name in RECORDED}
    finally:
        probe.close()
        node.stop()
    for name in RECORDED:
        in_bag = [m for m in recorded.get(f'/rec_a/{name}', []) if stamp_key(m) in stamps]
        assert [stamp_key(m) for m in replayed[name]] == [stamp_key(m) for m in in_bag], name
        for a, b in zip(in_bag, replayed[name]):
            same_output(name, a, b)
