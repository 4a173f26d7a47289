"""Reliability suite: seeded fuzzing of both input paths, overload at 60 Hz, faults at start-up and at run time,
and signals, against the installed node executable over the real middleware (pytest -m reliability).

ROS TEST: needs `bash scripts/setup_env.sh`, `bash scripts/fetch_data.sh` and `source scripts/env.sh`
(bash scripts/test.sh does all three). Every node runs in a namespace of its own. Bounds on time are derived
from frame times measured in the same test, never fixed, except the 2 s shutdown bound the node promises.
The figures (cases tried and rejected, latency percentiles, counters, shutdown times) are printed at the end
of the pytest run (conftest.py).
"""
from __future__ import annotations

import array
import math
import os
import signal
import time
from types import SimpleNamespace

import numpy as np
import pytest
from fuzz_cases import compressed_cases, huge_png, raw_cases
from ros_harness import STARTUP_TIMEOUT, Probe, StampClock, crop, executable, photo, require_install, same_stamp

pytestmark = pytest.mark.reliability

NODE_NAME = 'rfnet_feature_node'
FUZZ_SEED = 20261124
MAX_IMAGE_PIXELS = 4096 * 4096
SHUTDOWN_BOUND_S = 2.0


# --- Helpers ------------------------------------------------------------------------------------------------
class Node(SimpleNamespace):
    """A running feature node (child process) in ``namespace`` and a probe subscribed to its outputs."""

    def topic(self, name: str) -> str:
        return f'{self.namespace}/{name}'

    def statuses(self, since: float = 0.0):
        name = f'{self.namespace.lstrip("/")}/{NODE_NAME}: features'
        return [s for msg in self.probe.received('/diagnostics', since) for s in msg.status if s.name == name]

    def wait_for_status(self, predicate, what: str, timeout: float = 60.0):
        start = time.monotonic()
        return self.probe.wait_for(lambda: next((s for s in reversed(self.statuses(start)) if predicate(s)), None),
                                   what, timeout, self.process)

    def rss_mb(self) -> float:
        """Resident memory of the node process (MB)."""
        with open(f'/proc/{self.process.process.pid}/status') as status:
            return next(int(line.split()[1]) for line in status if line.startswith('VmRSS:')) / 1024

    def set_parameters(self, **values):
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter
        request = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg()
                                                    for k, v in values.items()])
        return self.probe.call(SetParameters, f'{self.namespace}/{NODE_NAME}/set_parameters', request).results

    def publish_raw(self, image, stamp, **fields):
        return self.probe.publish_image(image, stamp, topic=self.topic('image'), **fields)

    def stop(self) -> tuple[int, float]:
        """SIGINT; (exit status, seconds to exit)."""
        start = time.monotonic()
        status = self.process.stop()
        return status, time.monotonic() - start


def values(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def start_node(namespace: str, *args: str, image_type=None, image_topic: str = 'image', qos_depth: int = 100) -> Node:
    """Start lite_node in ``namespace`` with ``args`` (after --ros-args) and wait until it listens."""
    require_install()
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    from rfnet_ros.msg import FrameTiming, Keypoints

    process = executable('lite_node', '--ros-args', '-r', f'__ns:={namespace}', '-p', 'diagnostics_period:=0.5', *args)
    probe = Probe(name=f'rfnet_reliability_probe_{namespace.strip("/")}')
    node = Node(process=process, probe=probe, namespace=namespace, clock=StampClock())
    try:
        for msg_type, topic in ((Keypoints, 'keypoints'), (FrameTiming, 'timing')):
            probe.subscribe(msg_type, node.topic(topic), depth=1000)
        probe.subscribe(DiagnosticArray, '/diagnostics')
        image_pub = probe.publisher(image_type or Image, node.topic(image_topic), depth=qos_depth)
        probe.wait_for(lambda: image_pub.get_subscription_count() > 0, f'the node to subscribe to {image_topic}',
                       STARTUP_TIMEOUT, process)
        probe.wait_for(lambda: probe.node.count_publishers(node.topic('timing')) > 0, 'the node\'s publishers', 30,
                       process)
        time.sleep(1.0)  # let the probe's subscriptions match the node's publishers
    except BaseException:
        probe.close()
        process.stop()
        raise
    return node


def finish(node: Node) -> float:
    """Stop the node with SIGINT and check it exits cleanly; returns the seconds it took."""
    node.probe.close()
    status, seconds = node.stop()
    print(node.process.output[-4000:])
    assert status == 0, f'exit status {status}:\n{node.process.output}'
    assert 'Traceback' not in node.process.output and 'terminate called' not in node.process.output
    return seconds


def send_and_wait(node: Node, image, **fields):
    """Publish one raw frame and wait for its keypoints and timing."""
    header = node.publish_raw(image, node.clock.next(), **fields)
    keypoints = node.probe.wait_for_stamp(node.topic('keypoints'), header.stamp, node.process)
    timing = node.probe.wait_for_stamp(node.topic('timing'), header.stamp, node.process)
    return keypoints, timing


def percentile(values_ms, q) -> float:
    return float(np.percentile(np.asarray(values_ms), q))


# --- Fuzzing of the converters (no ROS graph) -----------------------------------------------------------------
# Kinds of rejection reason, for the figures (the pixel-type reason also names the encoding: it comes first).
REASON_KINDS = ('pixel type', 'unsupported encoding', 'image too large', 'empty', 'shorter than a row',
                'truncated data', 'does not decode', 'decodes to')


def reason_kind(reason: str) -> str:
    return next((kind for kind in REASON_KINDS if kind in reason), reason[:40])


def check_accepted(array, color_order, max_pixels):
    from rfnet_ros.image_messages import pixel_type_problem
    channels = 1 if array.ndim == 2 else array.shape[2]
    assert pixel_type_problem(array.dtype, channels) is None
    assert 0 < array.shape[0] * array.shape[1] <= max_pixels and color_order in ('bgr', 'rgb')


def test_fuzzed_raw_images_are_converted_or_rejected_with_a_reason(reliability_figures):
    from rfnet_ros.config import FeatureConfig
    from rfnet_ros.image_messages import ImageRejected, image_to_array
    from rfnet_ros.pipeline import FeaturePipeline

    cases = raw_cases(FUZZ_SEED, 3000)
    accepted, reasons = [], {}
    for fields in cases:
        try:
            image, order = image_to_array(SimpleNamespace(**fields), MAX_IMAGE_PIXELS)
        except ImageRejected as exc:
            reasons[reason_kind(exc.reason)] = reasons.get(reason_kind(exc.reason), 0) + 1
            continue
        check_accepted(image, order, MAX_IMAGE_PIXELS)
        accepted.append((image, order))
    rejected = len(cases) - len(accepted)
    assert accepted and rejected, 'the cases should hold both kinds'
    # Whatever passes conversion goes through the pipeline without an error (a sample: each takes a while).
    pipeline = FeaturePipeline(FeatureConfig(device='cpu', top_k=64))
    for image, order in accepted[:25]:
        result = pipeline.process(image, order)
        assert len(result.features) <= 64 and result.features.image_size == image.shape[:2]
    reliability_figures['fuzz raw (converter)'] = (
        f'{len(cases)} cases, {rejected} rejected, {len(accepted)} accepted ({min(25, len(accepted))} of them '
        f'through the pipeline); reasons: {dict(sorted(reasons.items()))}')


def test_fuzzed_compressed_images_are_converted_or_rejected_with_a_reason(reliability_figures):
    from rfnet_ros.image_messages import ImageRejected, compressed_to_array

    cases = compressed_cases(FUZZ_SEED, 1500)
    accepted, reasons = 0, {}
    for fmt, data in cases:
        try:
            image, order = compressed_to_array(SimpleNamespace(format=fmt, data=data), MAX_IMAGE_PIXELS)
        except ImageRejected as exc:
            reasons[reason_kind(exc.reason)] = reasons.get(reason_kind(exc.reason), 0) + 1
            continue
        check_accepted(image, order, MAX_IMAGE_PIXELS)
        accepted += 1
    assert reasons.get('image too large') and reasons.get('pixel type'), reasons
    reliability_figures['fuzz compressed (converter)'] = (
        f'{len(cases)} cases, {len(cases) - accepted} rejected, {accepted} accepted; '
        f'reasons: {dict(sorted(reasons.items()))}')


# --- Fuzzing over the middleware --------------------------------------------------------------------------------
def wait_for_counts(node: Node, received: int, what: str):
    return node.wait_for_status(lambda s: int(values(s)['frames_received']) >= received, what, timeout=120)


def publish_in_batches(node: Node, cases, publish, batch: int = 25):
    """``publish(case)`` for every case, waiting after each batch until the node has received them all: the
    subscription's queue (qos_depth 100) never overflows, so every case reaches the node's callback."""
    for start in range(0, len(cases), batch):
        for case in cases[start:start + batch]:
            publish(case)
            time.sleep(0.005)
        sent = min(start + batch, len(cases))
        wait_for_counts(node, sent, f'frames_received == {sent}')


def test_fuzzed_raw_frames_over_dds_are_counted_and_the_node_keeps_working(reliability_figures):
    from rfnet_ros.image_messages import ImageRejected, image_to_array

    node = start_node('/fuzz_raw', '-p', 'image_qos:=reliable', '-p', 'qos_depth:=100', '-p', 'top_k:=64')
    try:
        cases = raw_cases(FUZZ_SEED + 1, 200)
        expected_rejected = 0
        for fields in cases:
            try:
                image_to_array(SimpleNamespace(**fields), MAX_IMAGE_PIXELS)
            except ImageRejected:
                expected_rejected += 1
        publish_in_batches(node, cases, lambda fields: node.publish_raw(
            None, node.clock.next(), **dict(fields, data=array.array('B', fields['data']))))
        status = wait_for_counts(node, len(cases), f'frames_received == {len(cases)}')
        counts = {k: int(values(status)[k]) for k in ('frames_received', 'frames_rejected', 'frames_lost')}
        assert counts['frames_received'] == len(cases) and counts['frames_lost'] == 0, counts
        assert counts['frames_rejected'] == expected_rejected, counts
        keypoints, _ = send_and_wait(node, crop(photo(), 40, 40))
        assert len(keypoints.x) > 0, 'a good frame after the fuzzing gives keypoints'
        final = wait_for_counts(node, len(cases) + 1, 'the counters after the good frame')
        v = values(final)
        accepted = int(v['frames_received']) - int(v['frames_rejected'])
        assert int(v['frames_processed']) + int(v['frames_dropped']) + int(v['inference_errors']) == accepted, v
        assert v['inference_errors'] == '0', v['last_error']
    finally:
        finish(node)
    reliability_figures['fuzz raw (node over DDS)'] = (
        f'{len(cases)} cases, {counts["frames_rejected"]} rejected (as the converter predicts), '
        f'processed {v["frames_processed"]}, dropped {v["frames_dropped"]}, inference errors 0')


def test_fuzzed_compressed_frames_over_dds_are_bounded_and_counted(reliability_figures):
    from sensor_msgs.msg import CompressedImage

    from rfnet_ros.image_messages import ImageRejected, compressed_to_array

    node = start_node('/fuzz_compressed', '-p', 'image_transport:=compressed', '-p', 'image_qos:=reliable',
                      '-p', 'qos_depth:=100', '-p', 'top_k:=64', image_type=CompressedImage,
                      image_topic='image/compressed')
    try:
        rss_before = node.rss_mb()
        cases = compressed_cases(FUZZ_SEED + 2, 150)
        bomb = huge_png(20000, 20000)  # 389 KB declaring 400 MP: took the node to 3.7 GB before the bound
        cases[5] = ('png', bomb)
        expected_rejected = 0
        for fmt, data in cases:
            try:
                compressed_to_array(SimpleNamespace(format=fmt, data=data), MAX_IMAGE_PIXELS)
            except ImageRejected:
                expected_rejected += 1
        publish_in_batches(node, cases, lambda case: node.probe.publish_compressed(
            case[1], node.clock.next(), fmt=case[0], topic=node.topic('image/compressed')))
        status = wait_for_counts(node, len(cases), f'frames_received == {len(cases)}')
        v = values(status)
        assert int(v['frames_rejected']) == expected_rejected, v
        assert v['inference_errors'] == '0', v['last_error']
        growth = node.rss_mb() - rss_before
        assert growth < 300, f'RSS grew by {growth:.0f} MB'
    finally:
        finish(node)
    reliability_figures['fuzz compressed (node over DDS)'] = (
        f'{len(cases)} cases (one a 389 KB PNG declaring 20000x20000), {v["frames_rejected"]} rejected, '
        f'processed {v["frames_processed"]}, dropped {v["frames_dropped"]}; RSS growth {growth:.0f} MB')


# --- Overload ---------------------------------------------------------------------------------------------------
def test_overload_at_60_hz_keeps_latency_bounded_and_every_frame_accounted(reliability_figures):
    node = start_node('/overload', '-p', 'top_k:=256', qos_depth=1)
    rate, seconds = 60.0, 8.0
    try:
        frames = [crop(photo(), 100 + 2 * (i % 20), 80 + (i % 10)) for i in range(40)]
        for frame in frames[:3]:  # warm-up, and one frame at a time: the unloaded service time
            _, timing = send_and_wait(node, frame)
        idle_ms = timing.total_ms
        rss_before = node.rss_mb()
        sent: dict[tuple[int, int], float] = {}
        start = time.monotonic()
        for i in range(int(rate * seconds)):
            target = start + i / rate
            time.sleep(max(0.0, target - time.monotonic()))
            header = node.publish_raw(frames[i % len(frames)], node.clock.next())
            sent[(header.stamp.sec, header.stamp.nanosec)] = time.monotonic()
        publish_seconds = time.monotonic() - start
        time.sleep(3.0)  # the last frame's outputs
        status = node.wait_for_status(lambda s: True, 'diagnostics after the overload')
        rss_growth = node.rss_mb() - rss_before
        arrivals = {(msg.header.stamp.sec, msg.header.stamp.nanosec): arrival
                    for arrival, msg in node.probe.received_with_times(node.topic('keypoints'))}
        latency_ms = [(arrivals[k] - sent[k]) * 1e3 for k in sent if k in arrivals]
        timings = [m for m in node.probe.received(node.topic('timing'))
                   if (m.header.stamp.sec, m.header.stamp.nanosec) in sent]
        # The time a frame spends in the model and publishing, without its wait in the slot.
        work_ms = [m.convert_ms + m.preprocess_ms + m.detect_ms + m.describe_ms + m.match_ms + m.publish_ms
                   for m in timings]
        errors = [s for s in node.statuses() if s.level == s.ERROR]
        v = values(status)
    finally:
        shutdown_s = finish(node)
    assert len(latency_ms) >= 5, f'only {len(latency_ms)} frames came through'
    p50, p99, worst = percentile(latency_ms, 50), percentile(latency_ms, 99), max(latency_ms)
    work_p50, work_max = percentile(work_ms, 50), max(work_ms)
    # Newest-frame policy: a published frame waits at most for the frame in the model, then takes its own turn;
    # 0.5 s covers the middleware and the executor on a busy machine.
    assert p50 <= 2 * work_p50 + 500, (p50, work_p50)
    assert worst <= 2 * work_max + 1000, (worst, work_max)
    published = len(sent)
    received, processed, dropped = int(v['frames_received']), int(v['frames_processed']), int(v['frames_dropped'])
    lost = int(v['frames_lost'])
    # Every frame published (3 warm-up frames too) was received or counted as lost; only frames lost after
    # the last one received escape the sequence numbers.
    assert v['frames_lost_from'] == 'sequence numbers'
    assert published + 3 - 2 <= received + lost <= published + 3, (published, received, lost)
    assert processed + dropped == received, v
    assert not errors, [e.message for e in errors]  # overload is no stall
    reliability_figures['overload 60 Hz'] = (
        f'{published} frames of 320x240 bgr8 in {publish_seconds:.1f} s, top_k 256; idle frame {idle_ms:.0f} ms; '
        f'latency p50 {p50:.0f} / p99 {p99:.0f} / max {worst:.0f} ms (bounds {2 * work_p50 + 500:.0f} / '
        f'{2 * work_max + 1000:.0f} ms from model+publish time p50 {work_p50:.0f}, max {work_max:.0f} ms); '
        f'received {received - 3}, lost {lost}, processed {processed - 3}, dropped {dropped}, '
        f'outputs {len(latency_ms)}; RSS growth {rss_growth:.0f} MB; SIGINT exit {shutdown_s:.2f} s')


# --- Faults at start-up -----------------------------------------------------------------------------------------
def startup_fails(*args: str) -> str:
    require_install()
    process = executable('lite_node', '--ros-args', *args)
    status = process.wait(STARTUP_TIMEOUT)
    assert status == 1, process.output
    assert 'Traceback' not in process.output, process.output
    errors = [line for line in process.output.splitlines() if '[ERROR]' in line]
    assert len(errors) == 1, process.output
    return errors[0]


def test_startup_faults_stop_the_node_with_one_line(tmp_path, reliability_figures):
    import torch
    from test_weights_and_config import damaged_copy

    from rfnet_ros.config import WEIGHTS_DIR

    damaged = damaged_copy(WEIGHTS_DIR / 'rfnet_lite.pt', tmp_path / 'rfnet_lite.pt')
    unchecked = tmp_path / 'unchecked.pt'
    payload = torch.load(WEIGHTS_DIR / 'rfnet_lite.pt', weights_only=True)
    payload['format'] = 'rfnet_ros.weights/1'
    torch.save(payload, unchecked)
    faults = {
        'damaged weights': (('-p', f'weights:={damaged}'), 'fails its checksum, its tensors are damaged'),
        'weights without checksum': (('-p', f'weights:={unchecked}'), 'has no checksum'),
        'model size above max_model_pixels': (('-p', 'model_height:=2160', '-p', 'model_width:=3840'),
                                              '2160x3840 = 8294400 pixels exceeds max_model_pixels 2073600'),
    }
    seen = {}
    for name, (args, needle) in faults.items():
        line = startup_fails(*args)
        assert needle in line, line
        seen[name] = line.split('] ', 2)[-1][:110]
    reliability_figures['start-up faults'] = '; '.join(f'{k}: exit 1, "{v}"' for k, v in seen.items())


# --- Faults at run time -----------------------------------------------------------------------------------------
def test_runtime_faults_are_refused_or_reported(reliability_figures):
    node = start_node('/faults', '-p', 'top_k:=128', qos_depth=10)
    observed = {}
    try:
        detect_ms = [send_and_wait(node, crop(photo(), 60 + i, 60))[1].detect_ms for i in range(3)]
        # A model size the node cannot carry, set at run time (it stopped all output for minutes before).
        # ROS applies the parameters of one request one at a time: 2160x320 is accepted, then 2160x3840 refused.
        height, width = node.set_parameters(model_height=2160, model_width=3840)
        assert height.successful and not width.successful, (height.reason, width.reason)
        assert 'exceeds max_model_pixels' in width.reason, width.reason
        observed['model 2160x3840 at run time'] = width.reason
        # A size within the bound whose predicted frame time exceeds output_stall_timeout. The node predicts
        # 1080x1920 from the frames it measured at 240x320: at least 27 times their median detect time. Half
        # the least of those times 27 is below that prediction on any CPU, however fast (the parameter's
        # lowest value, 0.01 s, would take a detector under 0.74 ms at 240x320).
        timeout = max(0.01, min(0.5, math.floor(27 * min(detect_ms) / 2) / 1e3))
        assert all(r.successful for r in node.set_parameters(output_stall_timeout=timeout))
        height, width = node.set_parameters(model_height=1080, model_width=1920)
        assert not width.successful and width.reason.startswith('refused: predicted'), (timeout, width.reason)
        observed[f'model 1080x1920 with output_stall_timeout {timeout:g} s'] = width.reason
        assert all(r.successful for r in node.set_parameters(output_stall_timeout=10.0, model_height=240))
        keypoints, _ = send_and_wait(node, crop(photo(), 70, 60))
        assert len(keypoints.x) > 0, 'still working with the old settings'

        # Blank frames: no keypoints, and diagnostics warn of no texture.
        since = time.monotonic()
        counts = []
        for image in (np.zeros((240, 320, 3), np.uint8), np.full((240, 320), 77, np.uint8), np.zeros((1, 1), np.uint8),
                      np.zeros((240, 320, 3), np.uint8)):
            keypoints, _ = send_and_wait(node, image)
            counts.append(len(keypoints.x))
        assert counts == [0, 0, 0, 0], counts
        warned = node.probe.wait_for(lambda: next((s for s in node.statuses(since) if 'no texture' in s.message), None),
                                     'a no-texture warning', 30, node.process)
        assert warned.level == warned.WARN
        observed['blank frames (black, grey, 1x1)'] = f'keypoints {counts}; WARN "{warned.message[:80]}"'

        # A float image, and one above max_image_pixels (lowered for the test: big frames do not cross best-effort
        # DDS reliably), are refused with their reason; the node keeps running.
        reasons = []
        for fields, max_pixels in ((dict(encoding='32FC1', width=320, height=240, step=1280, data=bytes(1280 * 240)),
                                    None),
                                   (dict(encoding='mono8', width=320, height=240, step=320, data=bytes(320 * 240)),
                                    50_000)):
            if max_pixels:
                assert all(r.successful for r in node.set_parameters(max_image_pixels=max_pixels))
            before = int(values(node.wait_for_status(lambda s: True, 'diagnostics'))['frames_rejected'])
            node.publish_raw(None, node.clock.next(), **fields)
            status = node.wait_for_status(lambda s, b=before: int(values(s)['frames_rejected']) > b, 'a rejection')
            reasons.append(values(status)['last_reject_reason'])
        assert all(r.successful for r in node.set_parameters(max_image_pixels=4096 * 4096))
        assert 'pixel type float32 with 1 channel(s) is not supported' in reasons[0]
        assert 'image too large: 320x240 = 76800 pixels exceeds max_image_pixels 50000' in reasons[1]
        observed['32FC1 frame'], observed['320x240 frame, max_image_pixels 50000'] = reasons
        keypoints, _ = send_and_wait(node, crop(photo(), 90, 60))
        assert len(keypoints.x) > 0
    finally:
        finish(node)
    reliability_figures['run-time faults'] = '; '.join(f'{k}: {v[:120]}' for k, v in observed.items())


def test_a_stalled_node_reports_error_and_recovers(reliability_figures):
    # Frames that take far longer than output_stall_timeout: the node is stalled, whatever the input does. The
    # timeout is a quarter of a frame time measured here (the largest model the node allows, warm), so every
    # frame outlasts it on any CPU; the detector reports a frame that waited too long even when its outputs left
    # between two reports.
    node = start_node('/stall', '-p', 'model_height:=1080', '-p', 'model_width:=1920', '-p', 'top_k:=64',
                      qos_depth=1)
    try:
        frame = crop(photo(), 0, 0)
        frame_s = min(send_and_wait(node, crop(photo(), 1 + i, 0))[1].total_ms for i in range(2)) / 1e3
        timeout = round(frame_s / 4, 3)
        assert all(r.successful for r in node.set_parameters(output_stall_timeout=timeout)), timeout
        # The measured frames waited longer than the new timeout too: only reports after one without them count.
        node.wait_for_status(lambda s: values(s)['output_wait_max_s'] == '0.00', 'a report without the measured frames')
        since = time.monotonic()
        sent = []
        for _ in range(10):
            sent.append(node.publish_raw(frame, node.clock.next()).stamp)
            time.sleep(0.2)
        stalled = node.probe.wait_for(lambda: next((s for s in node.statuses(since) if s.level == s.ERROR), None),
                                      'an ERROR status while frames wait', 60, node.process)
        assert stalled.message.startswith('output stalled: no output for'), stalled.message
        # Input stops; once the frame in the model is out, the error clears.
        node.probe.wait_for(lambda: any(same_stamp(m.header.stamp, sent[-1])
                                        for m in node.probe.received(node.topic('timing'))),
                            'the last frame\'s outputs', 120, node.process)
        cleared = node.wait_for_status(lambda s: s.level != s.ERROR, 'a status without the error', 30)
        assert 'output stalled' not in cleared.message
    finally:
        finish(node)
    reliability_figures['stall'] = (f'1080x1920 frame {frame_s:.2f} s, output_stall_timeout {timeout:g} s: '
                                    f'ERROR "{stalled.message[:90]}", then "{cleared.message[:60]}"')


# --- Signals ----------------------------------------------------------------------------------------------------
SIGNALS = {'SIGINT': signal.SIGINT, 'SIGTERM': signal.SIGTERM}


@pytest.mark.parametrize('slow_frame', [False, True], ids=['under-60Hz-load', 'slow-frame-in-model'])
@pytest.mark.parametrize('signals', [('SIGINT',), ('SIGINT', 'SIGINT'), ('SIGTERM', 'SIGTERM')],
                         ids=['SIGINT', 'SIGINTx2', 'SIGTERMx2'])
def test_signals_end_the_node_within_2_s_with_status_0(signals, slow_frame, reliability_figures):
    namespace = f'/signals_{"slow" if slow_frame else "load"}_{len(signals)}{signals[0].lower()}'
    # The slow frame's node reports every 0.1 s, so that its arrival is seen well before the frame leaves the
    # model (about 1.3 to 2.5 s on 2 cores; a 1 s report period plus a 1 s wait sometimes outlasted it). The
    # frame is checked to be still in the model a quarter of a frame time, measured here, after its arrival was
    # seen: on a fast CPU a fixed wait could outlast the frame.
    args = (('-p', 'model_height:=1080', '-p', 'model_width:=1920', '-p', 'diagnostics_period:=0.1') if slow_frame
            else ('-p', 'top_k:=128'))
    node = start_node(namespace, *args, qos_depth=1)
    frame = crop(photo(), 30, 30)
    try:
        if slow_frame:  # one frame, well inside the model (seconds at this size) when the signal comes
            frame_s = send_and_wait(node, crop(photo(), 31, 30))[1].total_ms / 1e3
            stamp = node.publish_raw(frame, node.clock.next()).stamp
            node.wait_for_status(lambda s: int(values(s)['frames_received']) >= 2, 'the frame to arrive')
            time.sleep(frame_s / 4)
            assert not any(same_stamp(m.header.stamp, stamp) for m in node.probe.received(node.topic('timing'))), \
                f'the frame should still be in the model {frame_s / 4:.2f} s after its arrival (frame {frame_s:.2f} s)'
        else:  # 60 Hz until outputs come through, half a second more, then the signal while frames are in flight
            deadline = time.monotonic() + 60
            extra = 30
            while extra:
                node.publish_raw(frame, node.clock.next())
                time.sleep(1 / 60)
                if node.probe.received(node.topic('timing')):
                    extra -= 1
                assert time.monotonic() < deadline, 'no outputs after 60 s at 60 Hz'
        start = time.monotonic()
        for i, name in enumerate(signals):
            if i:
                time.sleep(0.05)
            os.killpg(node.process.process.pid, SIGNALS[name])
        status = node.process.wait(30)
        seconds = time.monotonic() - start
    finally:
        node.probe.close()
        node.process.stop()
    output = node.process.output
    assert status == 0, f'exit status {status}:\n{output}'
    assert 'Traceback' not in output and 'terminate called' not in output, output
    assert seconds < SHUTDOWN_BOUND_S, f'{seconds:.2f} s to exit'
    key = f'signals {"+".join(signals)} ({"slow frame in the model" if slow_frame else "60 Hz load"})'
    reliability_figures[key] = f'exit 0 in {seconds:.2f} s'
