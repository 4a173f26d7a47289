"""Integration tests of rfnet_feature_node: the installed executable over the real middleware.

ROS TEST: needs `bash scripts/setup_env.sh`, `bash scripts/fetch_data.sh` and `source scripts/env.sh`
(bash scripts/test.sh does all three), and the shipped weights rfnet_ros/weights/rfnet_lite.pt.

One node runs for the whole module, started from the installed config/lite.yaml with a smaller top_k and
a faster diagnostics period; a probe node publishes frames to it one at a time and waits (bounded) for
each frame's outputs, so no frame is dropped by the newest-frame policy. Stamps only go backwards where a
test says so (StampClock.rewind), to restart the node's matching. The compressed-input tests start a second
node with image_transport compressed in the namespace /compressed, so that the two never share a topic.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import yaml
from ros_harness import (
    ROOT,
    SHARE,
    STARTUP_TIMEOUT,
    crop,
    executable,
    photo,
    require_install,
    run_feature_node,
    same_stamp,
)

TOP_K = 128
NODE_NAME = 'rfnet_feature_node'
STATUS_NAME = f'{NODE_NAME}: features'
NODE_ARGS = ('--ros-args', '--params-file', str(SHARE / 'config' / 'lite.yaml'),
             '-p', f'top_k:={TOP_K}', '-p', 'diagnostics_period:=0.5')
# rclpy's own parameters, declared by every node.
BUILTIN_PARAMETERS = {'use_sim_time', 'start_type_description_service'}
DIAGNOSTIC_KEYS = (
    'input_rate_hz', 'output_rate_hz', 'frames_received', 'frames_processed', 'frames_dropped',
    'frames_rejected', 'last_reject_reason', 'time_jumps', 'device', 'engine', 'precision', 'replaced_layers',
    'keypoints_mean', 'matches_mean',
    *(f'{stage}_ms_{stat}' for stage in ('convert', 'preprocess', 'detect', 'describe', 'match', 'publish', 'total')
      for stat in ('mean', 'max')))


def expected_engine() -> tuple[str, str]:
    """The engine and precision lite.yaml's auto settings resolve to on this machine."""
    from rfnet_ros.engines import resolve_device, resolve_engine, resolve_precision

    device = resolve_device('auto')
    engine = resolve_engine('auto', device)
    return engine, resolve_precision('auto', engine, device)


def run_node(image_type, image_topic: str, namespace: str = '', extra_args: tuple[str, ...] = ()):
    """The node with lite.yaml, top_k TOP_K and ``extra_args`` (ros_harness.run_feature_node)."""
    probe_name = f'rfnet_test_probe{"_" + namespace.strip("/") if namespace else ""}'
    yield from run_feature_node((*NODE_ARGS, *extra_args), image_type, image_topic, namespace,
                                probe_name=probe_name)


@pytest.fixture(scope='module')
def node():
    """The feature node on raw images (topic /image) and a probe subscribed to its outputs."""
    from sensor_msgs.msg import Image
    yield from run_node(Image, 'image')


def send(node, image, color_order='bgr', frame_id='test_camera'):
    """Publish a frame and wait for its keypoints and timing; returns (header, keypoints, timing)."""
    process, probe, clock = node
    header = probe.publish_image(image, clock.next(), frame_id=frame_id, color_order=color_order)
    keypoints = probe.wait_for_stamp('keypoints', header.stamp, process)
    timing = probe.wait_for_stamp('timing', header.stamp, process)
    return header, keypoints, timing


def statuses(probe, since: float = 0.0, name: str = STATUS_NAME):
    """The DiagnosticStatus entries called ``name`` (this node's by default) received at
    time.monotonic() >= ``since``, newest last."""
    return [s for msg in probe.received('/diagnostics', since) for s in msg.status if s.name == name]


def values(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def wait_for_status(node, predicate, what, timeout=30.0, name=STATUS_NAME):
    """The newest status (of the node called ``name``) that arrives from now on and satisfies ``predicate``."""
    process, probe, _ = node
    start = time.monotonic()
    return probe.wait_for(lambda: next((s for s in reversed(statuses(probe, start, name)) if predicate(s)), None),
                          what, timeout, process)


def check_keypoints(msg, width, height):
    n = len(msg.x)
    assert 0 < n <= TOP_K
    for name in ('y', 'score', 'scale', 'orientation'):
        assert len(getattr(msg, name)) == n, name
    assert (msg.image_width, msg.image_height) == (width, height)
    x, y = np.asarray(msg.x), np.asarray(msg.y)
    assert x.min() >= 0 and x.max() <= width - 1 and y.min() >= 0 and y.max() <= height - 1
    assert np.all(np.asarray(msg.scale) > 0)
    assert np.all(np.abs(np.asarray(msg.orientation)) <= math.pi + 1e-5)
    assert msg.descriptor_size == 128
    descriptors = np.asarray(msg.descriptors, np.float32).reshape(n, msg.descriptor_size)
    np.testing.assert_allclose(np.linalg.norm(descriptors, axis=1), 1.0, atol=1e-3)


def test_sequence_outputs_carry_the_input_headers(node):
    process, probe, clock = node
    clock.rewind()  # a backwards jump: matching restarts, so the first frame below has no previous frame
    image = photo()
    frames = [(crop(image, 100 + 4 * i, 80 + 2 * i), encoding) for i, encoding in enumerate(('bgr', 'mono', 'rgba'))]
    sent = []
    for i, (frame, encoding) in enumerate(frames):
        if encoding == 'mono':
            frame = frame[..., 1].copy()
        elif encoding == 'rgba':
            frame = np.dstack([frame[..., ::-1], np.full(frame.shape[:2], 255, np.uint8)])
        header, keypoints, timing = send(node, frame, 'rgb' if encoding == 'rgba' else 'bgr',
                                         frame_id=f'test_camera_{i}')
        sent.append((header, keypoints))
        for msg in (keypoints, timing):
            assert msg.header.frame_id == f'test_camera_{i}'
        check_keypoints(keypoints, 320, 240)
        assert timing.num_keypoints == len(keypoints.x)
        assert timing.device and (timing.engine, timing.precision) == expected_engine()
        stages = [timing.convert_ms, timing.preprocess_ms, timing.detect_ms, timing.describe_ms, timing.match_ms,
                  timing.publish_ms]
        assert all(ms >= 0 for ms in stages) and timing.detect_ms > 0
        assert timing.total_ms >= sum(stages) - 1.0
        if i == 0:
            assert timing.num_matches == 0
            continue
        matches = probe.wait_for_stamp('matches', header.stamp, process)
        previous_header, previous_keypoints = sent[i - 1]
        assert matches.header.frame_id == f'test_camera_{i}'
        assert same_stamp(matches.previous_stamp, previous_header.stamp)
        m = len(matches.current_index)
        assert m == len(matches.previous_index) == len(matches.distance) == timing.num_matches
        assert m > 0
        assert max(matches.previous_index) < len(previous_keypoints.x)
        assert max(matches.current_index) < len(keypoints.x)
        assert len(set(matches.current_index)) == m, 'a keypoint matched twice'
        assert all(0 <= d <= 2.0 + 1e-4 for d in matches.distance)
    time.sleep(0.5)
    first_stamp = sent[0][0].stamp
    assert not [m for m in probe.received('matches') if same_stamp(m.header.stamp, first_stamp)], \
        'the frame after a backwards time jump must not be matched'


def test_known_shift_is_recovered_by_the_matches(node):
    """Two crops of a photo, the second moved so that content shifts by (dx, dy) px."""
    process, probe, _ = node
    dx, dy = 7, -4
    image = photo()
    x0, y0 = 200, 150
    previous, _, _ = send(node, crop(image, x0, y0))
    current, _, _ = send(node, crop(image, x0 - dx, y0 - dy))
    prev_kp = probe.wait_for_stamp('keypoints', previous.stamp, process)
    cur_kp = probe.wait_for_stamp('keypoints', current.stamp, process)
    matches = probe.wait_for_stamp('matches', current.stamp, process)
    assert same_stamp(matches.previous_stamp, previous.stamp)
    p = np.asarray(matches.previous_index)
    c = np.asarray(matches.current_index)
    assert len(c) >= 20, f'only {len(c)} matches'
    motion = (np.stack([np.asarray(cur_kp.x)[c], np.asarray(cur_kp.y)[c]], 1)
              - np.stack([np.asarray(prev_kp.x)[p], np.asarray(prev_kp.y)[p]], 1))
    error = np.linalg.norm(motion - (dx, dy), axis=1)
    median = np.median(motion, axis=0)
    assert np.allclose(median, (dx, dy), atol=1.0), f'median motion {median}, expected ({dx}, {dy})'
    share = float(np.mean(error <= 2.0))
    assert share >= 0.6, f'only {share:.0%} of {len(c)} matches move by ({dx}, {dy}) within 2 px'


BAD_FRAMES = [
    ('unsupported encoding', dict(encoding='yuv422', width=320, height=240, step=640, data=bytes(640 * 240))),
    ('unsupported encoding', dict(encoding='32FC1', width=320, height=240, step=1280, data=bytes(1280 * 240))),
    ('empty image', dict(encoding='bgr8', width=0, height=0, step=0, data=b'')),
    ('truncated data', dict(encoding='bgr8', width=320, height=240, step=960, data=bytes(960 * 239))),
    ('shorter than a row', dict(encoding='mono16', width=320, height=240, step=320, data=bytes(320 * 240))),
]


def test_bad_frames_are_rejected_and_the_node_keeps_running(node):
    process, probe, clock = node
    before = int(values(wait_for_status(node, lambda s: True, 'a diagnostics message'))['frames_rejected'])
    for i, (reason, fields) in enumerate(BAD_FRAMES, start=1):
        probe.publish_image(None, clock.next(), **fields)
        status = wait_for_status(node, lambda s, i=i: int(values(s)['frames_rejected']) == before + i,
                                 f'frames_rejected == {before + i} after a frame with {reason}')
        assert reason in values(status)['last_reject_reason']
    rejected = [s for s in statuses(probe) if int(values(s)['frames_rejected']) > before]
    assert any(s.level == s.WARN and 'rejected' in s.message for s in rejected), \
        [(s.level, s.message) for s in rejected]
    # Good frames are still processed, and the timing message counts the rejections.
    _, keypoints, timing = send(node, crop(photo(), 50, 50))
    check_keypoints(keypoints, 320, 240)
    assert timing.frames_rejected == before + len(BAD_FRAMES)
    assert process.running()
    assert 'rejected frame: unsupported encoding' in process.output


def test_diagnostics_report_rates_counts_and_stage_times(node):
    process, probe, _ = node
    send(node, crop(photo(), 10, 10))
    status = wait_for_status(node, lambda s: int(values(s)['frames_processed']) > 0, 'diagnostics with frames')
    found = values(status)
    missing = [key for key in DIAGNOSTIC_KEYS if key not in found]
    assert not missing, f'diagnostics lack {missing}'
    assert status.hardware_id == found['device']
    assert (found['engine'], found['precision']) == expected_engine() and found['replaced_layers'] == '9'
    for key in DIAGNOSTIC_KEYS:
        if key not in ('last_reject_reason', 'device', 'engine', 'precision'):
            assert float(found[key]) >= 0, key
    # With no input for longer than stall_timeout (2 s in lite.yaml), diagnostics warn of a stall.
    stalled = wait_for_status(node, lambda s: 'input stalled' in s.message, 'a stall warning', timeout=20)
    assert stalled.level == stalled.WARN


def test_every_config_parameter_is_declared_and_described(node):
    from rcl_interfaces.msg import ParameterType
    from rcl_interfaces.srv import DescribeParameters, GetParameters, ListParameters

    from rfnet_ros.config import read_parameters

    process, probe, _ = node
    listed = probe.call(ListParameters, f'/{NODE_NAME}/list_parameters', ListParameters.Request())
    declared = set(listed.result.names) - BUILTIN_PARAMETERS
    for name in ('lite', 'full'):
        in_yaml = read_parameters(ROOT / 'config' / f'{name}.yaml')
        assert set(in_yaml) == declared, f'config/{name}.yaml vs node: {set(in_yaml) ^ declared}'

    names = sorted(declared)
    described = probe.call(DescribeParameters, f'/{NODE_NAME}/describe_parameters',
                           DescribeParameters.Request(names=names)).descriptors
    by_name = {d.name: d for d in described}
    assert all(by_name[n].description for n in names), 'every parameter has a description'
    top_k = by_name['top_k']
    assert top_k.type == ParameterType.PARAMETER_INTEGER
    assert (top_k.integer_range[0].from_value, top_k.integer_range[0].to_value) == (1, 8192)
    assert by_name['score_threshold'].floating_point_range[0].to_value == 1.0
    assert by_name['weights'].read_only and not by_name['top_k'].read_only
    assert by_name['image_transport'].read_only and 'compressed' in by_name['image_transport'].additional_constraints
    assert 'fp16' in by_name['precision'].additional_constraints

    got = probe.call(GetParameters, f'/{NODE_NAME}/get_parameters', GetParameters.Request(names=names)).values
    from rclpy.parameter import parameter_value_to_python
    actual = dict(zip(names, (parameter_value_to_python(v) for v in got)))
    expected = {**read_parameters(ROOT / 'config' / 'lite.yaml'), 'top_k': TOP_K, 'diagnostics_period': 0.5}
    assert actual == expected


def set_parameter(probe, name, value):
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter
    request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
    return probe.call(SetParameters, f'/{NODE_NAME}/set_parameters', request).results[0]


def test_runtime_parameter_changes_are_validated(node):
    process, probe, _ = node
    rejected = (('top_k', 0, 'top_k'), ('nms_size', 4, 'nms_size'), ('match_ratio', 1.5, 'match_ratio'),
                ('weights', 'other.pt', 'read-only'), ('precision', 'fp16', 'read-only'),
                ('image_transport', 'compressed', 'read-only'))
    for name, value, reason in rejected:
        result = set_parameter(probe, name, value)
        assert not result.successful, f'{name}={value!r} was accepted'
        assert reason in result.reason, result.reason
    result = set_parameter(probe, 'top_k', 16)
    assert result.successful, result.reason
    try:
        _, keypoints, _ = send(node, crop(photo(), 30, 30))
        assert 0 < len(keypoints.x) <= 16
    finally:
        assert set_parameter(probe, 'top_k', TOP_K).successful


def test_backwards_time_jump_is_counted(node):
    process, probe, clock = node
    send(node, crop(photo(), 60, 60))
    before = int(values(wait_for_status(node, lambda s: True, 'a diagnostics message'))['time_jumps'])
    clock.rewind()
    header, _, timing = send(node, crop(photo(), 62, 60))
    assert timing.num_matches == 0, 'matched across a backwards time jump'
    wait_for_status(node, lambda s: int(values(s)['time_jumps']) > before, 'time_jumps to count the jump')


@pytest.mark.parametrize('args, needle', [
    (('-p', 'top_k:=0'), 'invalid parameter top_k: 0 is below the minimum 1'),
    (('-p', 'weights:=/nonexistent/rfnet_missing.pt'), 'weights file not found: /nonexistent/rfnet_missing.pt'),
    (('-p', 'image_qos:=fast'), 'invalid parameter image_qos'),
    (('-p', 'image_transport:=theora'), 'invalid parameter image_transport'),
    (('-p', 'score_threshold:=1'), 'invalid parameter score_threshold: expected a double'),
    # A -p value of another type than the params file's value for it used to be dropped by rcl's merge.
    (('--params-file', str(SHARE / 'config' / 'lite.yaml'), '-p', 'top_k:=abc'),
     "invalid parameter top_k: expected an integer value such as 512, got 'abc'"),
    (('--params-file', str(SHARE / 'config' / 'lite.yaml'), '-p', 'top_k:=5.5'),
     "invalid parameter top_k: expected an integer value such as 512, got '5.5'"),
    (('-p', 'match_ratio:=high', '--params-file', str(SHARE / 'config' / 'lite.yaml')),
     "invalid parameter match_ratio: expected a double value"),
    (('--params-file', '/nonexistent/rfnet_params.yaml'),
     "cannot start: Couldn't parse params file: '--params-file /nonexistent/rfnet_params.yaml'"),
    (('-p', 'mask_image:=/nonexistent/mask.png'), 'invalid parameter mask_image: /nonexistent/mask.png does not exist'),
    (('-p', 'match_search_radius:=-1.0'), 'invalid parameter match_search_radius: -1.0 is below the minimum 1.0'),
    (('-p', 'imu_to_camera_rotation:=1 0 0 0 1 0 0 0 2'), 'invalid parameter imu_to_camera_rotation: not a rotation'),
    (('-p', 'match_prediction:=kalman'), 'invalid parameter match_prediction'),
])
def test_bad_startup_parameters_stop_the_node_with_one_clear_message(args, needle):
    require_install()
    # lite_node: the node's first name, kept as an alias of feature_node.
    process = executable('lite_node', '--ros-args', *args)
    status = process.wait(STARTUP_TIMEOUT)
    assert status != 0, process.output
    assert needle in process.output
    assert 'Traceback' not in process.output, process.output
    errors = [line for line in process.output.splitlines() if '[ERROR]' in line]
    assert len(errors) == 1, errors


def test_malformed_params_file_stops_the_node_with_one_line(tmp_path):
    require_install()
    params = tmp_path / 'broken.yaml'
    params.write_text('/**:\n  ros__parameters:\n    top_k: [512\n    weights: "rfnet_lite.pt"\n')
    process = executable('lite_node', '--ros-args', '--params-file', str(params))
    status = process.wait(STARTUP_TIMEOUT)
    assert status == 1, process.output
    assert f"cannot start: Couldn't parse params file: '--params-file {params}'" in process.output
    assert 'Traceback' not in process.output
    assert len(process.output.strip().splitlines()) == 1, process.output


def test_params_file_and_launch_config_agree():
    """Both installed configs load into the settings dataclasses with nothing left over."""
    require_install()
    from rfnet_ros.config import FeatureConfig, NodeConfig, read_parameters
    for name, weights in (('lite', 'rfnet_lite8_fixed_norm.pt'), ('full', 'rfnet_full.pt')):
        installed = read_parameters(SHARE / 'config' / f'{name}.yaml')
        assert installed == read_parameters(ROOT / 'config' / f'{name}.yaml'), 'installed config is stale'
        feature = FeatureConfig(**{k: v for k, v in installed.items() if k in FeatureConfig.names()})
        NodeConfig(**{k: v for k, v in installed.items() if k in NodeConfig.names()})
        assert feature.weights_path.name == weights
        assert feature.weights_path.is_file()
    assert yaml.safe_load((ROOT / 'config' / 'lite.yaml').read_text()).keys() == {'/**'}


# --- Compressed input (image_transport compressed) ------------------------------------------------------
COMPRESSED_NS = '/compressed'
COMPRESSED_PREFIX = 'compressed/'  # the probe's topic names of that node (the probe is in /)
COMPRESSED_STATUS_NAME = f'{COMPRESSED_PREFIX}{NODE_NAME}: features'


@pytest.fixture(scope='module')
def compressed_node():
    """A second feature node, in /compressed, reading sensor_msgs/CompressedImage on image/compressed."""
    from sensor_msgs.msg import CompressedImage
    yield from run_node(CompressedImage, 'image/compressed', COMPRESSED_NS, ('-p', 'image_transport:=compressed'))


def jpeg(image: np.ndarray) -> bytes:
    import cv2
    ok, data = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def send_compressed(node, data: bytes, frame_id='test_camera'):
    """Publish compressed data and wait for its keypoints and timing; returns (header, keypoints, timing)."""
    process, probe, clock = node
    header = probe.publish_compressed(data, clock.next(), frame_id=frame_id,
                                      topic=COMPRESSED_PREFIX + 'image/compressed')
    keypoints = probe.wait_for_stamp(COMPRESSED_PREFIX + 'keypoints', header.stamp, process)
    timing = probe.wait_for_stamp(COMPRESSED_PREFIX + 'timing', header.stamp, process)
    return header, keypoints, timing


def test_compressed_frames_carry_the_input_headers(compressed_node):
    process, probe, _ = compressed_node
    assert probe.node.count_subscribers(f'{COMPRESSED_NS}/image') == 0, 'the raw topic is subscribed as well'
    image = photo()
    sent = []
    for i, frame in enumerate((crop(image, 200, 150), crop(image, 195, 152)[..., 1].copy())):  # color, then mono
        header, keypoints, timing = send_compressed(compressed_node, jpeg(frame), frame_id=f'jpeg_camera_{i}')
        for msg in (keypoints, timing):
            assert same_stamp(msg.header.stamp, header.stamp)
            assert msg.header.frame_id == f'jpeg_camera_{i}'
        check_keypoints(keypoints, 320, 240)
        assert timing.num_keypoints == len(keypoints.x) and timing.convert_ms > 0
        sent.append(header)
    matches = probe.wait_for_stamp(COMPRESSED_PREFIX + 'matches', sent[1].stamp, process)
    assert matches.header.frame_id == 'jpeg_camera_1'
    assert same_stamp(matches.previous_stamp, sent[0].stamp)
    assert len(matches.current_index) > 0
    assert f'listening on {COMPRESSED_NS}/image/compressed (compressed' in process.output


def test_corrupt_compressed_frames_are_rejected_and_the_node_keeps_running(compressed_node):
    process, probe, clock = compressed_node
    status = wait_for_status(compressed_node, lambda s: True, 'a diagnostics message', name=COMPRESSED_STATUS_NAME)
    before = int(values(status)['frames_rejected'])
    good = jpeg(crop(photo(), 120, 90))
    bad_frames = [('does not decode', good[:100]),  # a JPEG cut off inside its headers
                  ('empty compressed image', b'')]
    for i, (reason, data) in enumerate(bad_frames, start=1):
        probe.publish_compressed(data, clock.next(), topic=COMPRESSED_PREFIX + 'image/compressed')
        status = wait_for_status(compressed_node, lambda s, i=i: int(values(s)['frames_rejected']) == before + i,
                                 f'frames_rejected == {before + i} after a compressed frame rejected for "{reason}"',
                                 name=COMPRESSED_STATUS_NAME)
        assert reason in values(status)['last_reject_reason']
    # Later good frames are still processed, and the timing message counts the rejections.
    header, keypoints, timing = send_compressed(compressed_node, good, frame_id='after_corrupt')
    assert keypoints.header.frame_id == 'after_corrupt'
    check_keypoints(keypoints, 320, 240)
    assert timing.frames_rejected == before + len(bad_frames)
    assert process.running()
    assert 'rejected frame: compressed image does not decode' in process.output
