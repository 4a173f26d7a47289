"""Keypoint spread (rfnet_ros.tracking.spread) and motion prediction (rfnet_ros.tracking.prediction)."""
from __future__ import annotations

import cv2
import numpy as np

from rfnet_ros.tracking.prediction import GyroIntegrator, fit_motion, rotation_homography, search_window, warp_points
from rfnet_ros.tracking.spread import spread


def test_spread_keeps_the_priority_keypoint_of_each_neighbourhood_and_none_closer():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, size=(400, 2))
    priority = rng.uniform(size=400)
    kept = spread(points, np.argsort(-priority), 10.0, (100, 100))
    assert 10 < len(kept) < 400
    gaps = np.linalg.norm(points[kept][:, None] - points[kept][None], axis=2) + np.eye(len(kept)) * 1e9
    assert gaps.min() > 10.0 - 1.5  # whole-pixel discs: within rounding of the distance
    assert int(np.argmax(priority)) in kept
    # Every dropped keypoint has a kept one of higher priority nearby.
    for index in sorted(set(range(400)) - set(kept.tolist())):
        near = np.linalg.norm(points[kept] - points[index], axis=1) <= 10.0 + 1.5
        assert (priority[kept][near] >= priority[index]).any()


def test_spread_with_no_distance_keeps_everything():
    points = np.array([[5.0, 5.0], [5.2, 5.1], [6.0, 5.0]])
    assert spread(points, np.arange(3), 0.0, (10, 10)).tolist() == [0, 1, 2]
    assert spread(points, np.array([1, 2, 0]), 5.0, (10, 10)).tolist() == [1]


def test_constant_motion_is_fitted_and_applied():
    rng = np.random.default_rng(1)
    points0 = rng.uniform(0, 300, size=(60, 2))
    motion = np.array([[1.0, 0.02, 5.0], [-0.02, 1.0, -3.0], [0.0, 0.0, 1.0]])
    points1 = warp_points(motion, points0)
    points1[:5] += 40.0  # wrong matches: RANSAC leaves them out
    fitted = fit_motion(points0, points1)
    assert fitted is not None
    assert np.abs(warp_points(fitted, points0[5:]) - points1[5:]).max() < 0.01
    assert fit_motion(points0[:10], points1[:10]) is None  # too few to fit


def test_search_window_allows_only_points_near_the_prediction():
    predicted = np.array([[10.0, 10.0], [50.0, 50.0]])
    points = np.array([[12.0, 10.0], [10.0, 25.0], [50.0, 44.0]])
    assert search_window(predicted, points, 6.0).tolist() == [[True, False, False], [False, False, True]]


def test_the_rotation_homography_moves_far_points_as_the_turning_camera_sees_them():
    camera = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    rotation, _ = cv2.Rodrigues(np.array([0.02, -0.05, 0.1]))  # later camera axes in the earlier frame
    directions = np.random.default_rng(2).uniform(-0.4, 0.4, size=(30, 3)) + [0, 0, 1]
    before = (camera @ directions.T).T
    after = (camera @ (rotation.T @ directions.T)).T
    predicted = warp_points(rotation_homography(camera, rotation), before[:, :2] / before[:, 2:])
    assert np.abs(predicted - after[:, :2] / after[:, 2:]).max() < 1e-6


def test_gyro_integration_between_two_stamps():
    gyro = GyroIntegrator()
    for i in range(101):  # 200 Hz, 0.5 s of a constant 1 rad/s turn about the camera's y axis
        assert gyro.add(i * 5_000_000, np.array([0.0, 1.0, 0.0])) is None
    rotation, why = gyro.rotation(100_000_000, 300_000_000)
    angle = cv2.Rodrigues(rotation)[0].ravel()
    assert np.allclose(angle, [0.0, 0.2, 0.0], atol=1e-9) and why == ""
    rotation, why = gyro.rotation(102_000_000, 303_000_000)  # stamps between samples
    assert np.allclose(cv2.Rodrigues(rotation)[0].ravel(), [0.0, 0.201, 0.0], atol=1e-9)
    rotation, why = gyro.rotation(400_000_000, 600_000_000)  # samples end at 0.5 s: the interval is not covered
    assert rotation is None and "do not cover" in why
    assert gyro.add(600_000_000, np.array([np.nan, 0.0, 0.0])) is not None
    assert gyro.add(100_000_000, np.array([0.0, 0.0, 0.0])) is not None  # older than the last sample


def test_gyro_rates_are_turned_into_the_camera_frame():
    imu_to_camera, _ = cv2.Rodrigues(np.array([0.0, 0.0, np.pi / 2]))  # IMU x is the camera's y
    gyro = GyroIntegrator(imu_to_camera)
    gyro.add(0, np.array([1.0, 0.0, 0.0]))
    gyro.add(100_000_000, np.array([1.0, 0.0, 0.0]))
    angle = cv2.Rodrigues(gyro.rotation(0, 100_000_000)[0])[0].ravel()
    assert np.allclose(angle, [0.0, 0.1, 0.0], atol=1e-9)


def test_gyro_samples_too_far_apart_give_no_rotation():
    gyro = GyroIntegrator()
    assert gyro.rotation(0, 10)[0] is None  # no samples yet
    for stamp in (0, 50_000_000, 300_000_000, 350_000_000):  # a 0.25 s hole
        gyro.add(stamp, np.zeros(3))
    assert gyro.rotation(0, 40_000_000)[0] is not None
    rotation, why = gyro.rotation(40_000_000, 320_000_000)
    assert rotation is None and "apart" in why
