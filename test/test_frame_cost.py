"""Unit tests of rfnet_ros.ros.frame_cost: the model-size bound and the predicted per-frame cost of changes."""
import dataclasses

import pytest

from rfnet_ros.config import FeatureConfig
from rfnet_ros.ros.frame_cost import FrameCost, model_size_problem

# 240x320, top_k 512, one description per keypoint
BASE = FeatureConfig(device='cpu', keypoint_frames='learned', min_strength=0.0, second_peak_ratio=1.0)
MEASURED = {'convert': 1.0, 'preprocess': 2.0, 'detect': 60.0, 'describe': 200.0, 'match': 4.0, 'publish': 3.0,
            'total': 300.0}


def changed(**values):
    return dataclasses.replace(BASE, **values)


def measured_cost(frames=5):
    cost = FrameCost()
    for _ in range(frames):
        cost.observe(BASE, MEASURED)
    return cost


def test_model_sizes_above_the_bound_are_refused():
    assert model_size_problem(changed(model_height=1080, model_width=1920), 1920 * 1080) is None
    problem = model_size_problem(changed(model_height=2160, model_width=3840), 1920 * 1080)
    assert problem == ('model_height x model_width: 2160x3840 = 8294400 pixels exceeds max_model_pixels 2073600')


def test_prediction_scales_detect_by_pixels_and_describe_by_descriptions():
    cost = measured_cost()
    assert cost.predict_ms(BASE) == pytest.approx(270.0)  # 'total' is not a stage
    bigger = changed(model_height=480, model_width=640, top_k=1024)
    assert cost.predict_ms(bigger) == pytest.approx(1 + 2 + 60 * 4 + 200 * 2 + 4 * 4 + 3)
    peaks = changed(keypoint_frames='image', second_peak_ratio=0.7)
    assert cost.predict_ms(peaks) == pytest.approx(1 + 2 + 60 + 200 * 3 + 4 * 9 + 3)


def test_dearer_changes_past_the_output_stall_timeout_are_refused():
    cost = measured_cost()
    huge = changed(model_height=1080, model_width=1920)  # 27x the pixels: detect 1.62 s
    problem = cost.change_problem(BASE, huge, output_stall_timeout=1.0)
    assert problem.startswith('predicted 1.8 s per frame with these settings (0.27 s with the current ones) '
                              'exceeds output_stall_timeout 1 s')
    assert cost.change_problem(BASE, huge, output_stall_timeout=10.0) is None
    assert cost.change_problem(BASE, changed(top_k=64), output_stall_timeout=0.1) is None, 'cheaper is allowed'


def test_nothing_is_predicted_before_the_first_frame():
    cost = FrameCost()
    assert cost.predict_ms(BASE) is None
    assert cost.change_problem(BASE, changed(model_height=1080, model_width=1920), 0.1) is None


def test_changes_accepted_since_the_last_frame_are_judged_from_its_measurement():
    # One request for model_height and model_width is applied one parameter at a time: the second step is
    # judged from the frames measured before the first.
    cost = measured_cost()
    tall = changed(model_height=1080)  # 4.5x the pixels: 0.48 s predicted
    assert cost.change_problem(BASE, tall, output_stall_timeout=1.0) is None
    problem = cost.change_problem(tall, changed(model_height=1080, model_width=1920), output_stall_timeout=1.0)
    assert problem and problem.startswith('predicted 1.8 s')
    cost.observe(changed(top_k=64), MEASURED)
    assert cost.predict_ms(changed(top_k=64)) == pytest.approx(270.0), 'a new measurement replaces the old'
