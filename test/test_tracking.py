"""The ROS-free front end: track ids, geometric check, camera model, VINS layout, drawing, and the tracker on
real photographs with known motion."""
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from rfnet_ros.config import FeatureConfig
from rfnet_ros.tracking.camera import CalibrationRejected, CameraModel, LatestCalibration
from rfnet_ros.tracking.drawing import FULL_LENGTH, TrackTrails, draw_tracks, length_colors, to_bgr8
from rfnet_ros.tracking.geometry import check_matches
from rfnet_ros.tracking.tracker import FeatureTracker
from rfnet_ros.tracking.tracks import TrackBook
from rfnet_ros.tracking.vins import FUSION_CHANNELS, ID_MODULUS, MONO_CHANNELS, TrackedPoints, VinsLayout, feature_cloud

DATA = Path(__file__).resolve().parents[1] / "data"


# --- Track ids ---------------------------------------------------------------------------------------------
def test_matched_keypoints_keep_their_ids_and_the_others_get_new_ones():
    book = TrackBook(alive_after=3)
    ids0, lengths0 = book.update(4, np.zeros((0, 2)))
    assert ids0.tolist() == [0, 1, 2, 3] and lengths0.tolist() == [1, 1, 1, 1]
    # Frame 1: keypoint 0 <- previous 2, keypoint 2 <- previous 0; keypoints 1 and 3 are new.
    ids1, lengths1 = book.update(4, np.array([[2, 0], [0, 2]]))
    assert ids1.tolist() == [2, 4, 0, 5] and lengths1.tolist() == [2, 1, 2, 1]
    assert ids1.dtype == np.uint64
    ids2, lengths2 = book.update(2, np.array([[0, 1], [2, 0]]))
    assert ids2.tolist() == [0, 2] and lengths2.tolist() == [3, 3]


def test_ids_are_never_reused_also_across_resets():
    book = TrackBook()
    seen = []
    for frame in range(6):
        previous = len(book.ids)
        matches = np.array([[i, i] for i in range(0, min(previous, 5), 2)]).reshape(-1, 2)
        ids, _ = book.update(5, matches)
        fresh = np.setdiff1d(np.arange(5), matches[:, 1])
        seen.extend(ids[fresh].tolist())
        if frame == 3:
            book.reset()
    assert len(seen) == len(set(seen)), 'a new track got an id handed out before'
    assert book.statistics().started == len(seen)


def test_track_statistics():
    book = TrackBook(alive_after=3)
    book.update(3, np.zeros((0, 2)))  # tracks 0, 1, 2
    book.update(3, np.array([[0, 0], [1, 1]]))  # 2 ends at length 1; 3 starts
    book.update(2, np.array([[0, 0], [2, 1]]))  # 0 reaches 3; 1 ends at 2; 3 continues (2)
    stats = book.statistics()
    assert (stats.started, stats.ended, stats.active) == (4, 2, 2)
    assert stats.mean_length == pytest.approx(1.5)  # ended tracks: lengths 1 and 2
    assert stats.active_mean_length == pytest.approx(2.5)  # alive: 3 and 2
    # Known fates at 3 frames: track 0 reached it, tracks 2 and 1 ended before; track 3 is undecided.
    assert stats.alive_known == 3 and stats.alive_share == pytest.approx(1 / 3)
    book.reset()
    stats = book.statistics()
    assert (stats.ended, stats.active) == (4, 0)
    assert stats.mean_length == pytest.approx((1 + 2 + 3 + 2) / 4)
    assert stats.alive_share == pytest.approx(1 / 4)


@pytest.mark.parametrize('matches, needle', [([[0, 0], [0, 1]], 'one-to-one'), ([[5, 0]], 'previous frame'),
                                             ([[0, 9]], 'current frame')])
def test_bad_matches_are_refused(matches, needle):
    book = TrackBook()
    book.update(3, np.zeros((0, 2)))
    with pytest.raises(ValueError, match=needle):
        book.update(3, np.array(matches))


# --- Geometric check ---------------------------------------------------------------------------------------
K = np.array([[400.0, 0, 320], [0, 400, 240], [0, 0, 1]])


def two_views(rng, count: int, planar: bool = False):
    """Pixel projections (count, 2) of random 3D points (depths 2..8 m, or a plane at 4 m) in two views of a
    camera that moves 0.3 m and turns 3 degrees, with 0.3 px noise, inside a 640x480 image."""
    points = np.column_stack([rng.uniform(-2.4, 2.4, count), rng.uniform(-1.8, 1.8, count),
                              np.full(count, 4.0) if planar else rng.uniform(2, 8, count)])
    if not planar:
        points[:, :2] *= points[:, 2:3] / 4
    rotation, _ = cv2.Rodrigues(np.array([0.01, np.radians(3), 0.02]))
    translation = np.array([0.3, 0.05, 0.1])
    first, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), K, None)
    second, _ = cv2.projectPoints(points, cv2.Rodrigues(rotation)[0], translation, K, None)
    first, second = first.reshape(-1, 2), second.reshape(-1, 2)
    first += rng.normal(0, 0.3, first.shape)
    second += rng.normal(0, 0.3, second.shape)
    return first, second


def inject_wrong_matches(rng, first, second, count):
    """``count`` wrong matches: random points of the first view paired with random points of the second."""
    wrong_first = rng.uniform((0, 0), (640, 480), (count, 2))
    wrong_second = rng.uniform((0, 0), (640, 480), (count, 2))
    truth = np.r_[np.ones(len(first), bool), np.zeros(count, bool)]
    return np.r_[first, wrong_first], np.r_[second, wrong_second], truth


@pytest.mark.parametrize('model, planar', [('fundamental', False), ('homography', True)])
@pytest.mark.parametrize('seed', [1, 2, 3])
def test_geometric_check_removes_injected_wrong_matches(model, planar, seed):
    rng = np.random.default_rng(seed)
    first, second, truth = inject_wrong_matches(rng, *two_views(rng, 200, planar), count=60)
    result = check_matches(first, second, model, threshold=2.0)
    assert result.status == 'checked'
    kept_wrong = np.count_nonzero(result.inliers & ~truth)
    kept_right = np.count_nonzero(result.inliers & truth)
    # A random wrong match passes the epipolar test when it falls within 2 px of its epipolar line, a band
    # of about 1% of the image: of 60, one or two pass, rarely more. A homography leaves no such freedom.
    assert kept_wrong <= (4 if model == 'fundamental' else 0), kept_wrong
    assert kept_right >= 0.98 * truth.sum(), kept_right
    assert result.ratio == pytest.approx(result.inliers.mean())


def test_homography_rejects_what_the_fundamental_matrix_accepts_off_the_plane():
    first, second = two_views(np.random.default_rng(4), 150, planar=False)
    assert check_matches(first, second, 'fundamental').ratio > 0.98
    assert check_matches(first, second, 'homography').ratio < 0.6  # depths 2..8 m do not fit one plane


def test_too_few_matches_are_all_rejected_and_off_keeps_everything():
    first, second = two_views(np.random.default_rng(5), 14)
    result = check_matches(first, second, 'fundamental', min_matches=15)
    assert result.status == 'too few' and not result.inliers.any() and result.ratio == 0.0
    assert check_matches(first[:8], second[:8], 'fundamental', min_matches=8).status == 'checked'
    assert check_matches(first[:7], second[:7], 'fundamental', min_matches=1).status == 'too few'
    off = check_matches(first, second, 'off')
    assert off.status == 'off' and off.inliers.all() and off.ratio == 1.0
    empty = check_matches(np.zeros((0, 2)), np.zeros((0, 2)), 'off')
    assert empty.ratio == 0.0
    with pytest.raises(ValueError, match='not one of'):
        check_matches(first, second, 'affine')


def test_matches_of_a_camera_that_does_not_move_are_checked():
    """Matches of frame 94 of vtest.avi (a fixed camera: most points move by hundredths of a pixel), on
    which OpenCV's USAC fails: the check falls back to classic RANSAC and keeps the still points."""
    data = np.load(Path(__file__).parent / 'data' / 'static_camera_matches.npz')
    points0, points1 = data['points0'], data['points1']
    result = check_matches(points0, points1, 'fundamental')
    assert result.status == 'checked'
    still = np.linalg.norm(points1 - points0, axis=1) < 0.05
    assert still.sum() > 200 and result.inliers[still].all()
    assert not result.inliers[np.linalg.norm(points1 - points0, axis=1) > 100].any()


# --- Camera model ------------------------------------------------------------------------------------------
def camera_info(model='plumb_bob', d=(-0.28, 0.07, 2e-4, -1e-4, 0.0), width=640, height=480, k=None, **fields):
    values = dict(k=list(k if k is not None else K.ravel()), d=list(d), distortion_model=model, width=width,
                  height=height, binning_x=0, binning_y=0, roi=SimpleNamespace(width=0, height=0))
    values.update(fields)
    return SimpleNamespace(**values)


@pytest.mark.parametrize('model, d', [('plumb_bob', (-0.28, 0.07, 2e-4, -1e-4, 0.0)),
                                      ('plumb_bob', ()),
                                      ('rational_polynomial', (-0.2, 0.05, 1e-4, 1e-4, 0.001, 0.01, 0.002, 5e-4)),
                                      ('equidistant', (-0.01, 0.02, -0.01, 0.002))])
def test_normalised_coordinates_invert_the_projection(model, d):
    camera = CameraModel.from_camera_info(camera_info(model, d))
    normalised = np.random.default_rng(6).uniform(-0.7, 0.7, (100, 2))
    rays = np.column_stack([normalised, np.ones(100)])
    # The projection written independently of CameraModel: OpenCV's pinhole and fisheye models.
    if model == 'equidistant':
        pixels = cv2.fisheye.projectPoints(rays[:, None], np.zeros(3), np.zeros(3), K, np.array(d))[0]
    else:
        pixels = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), K, np.array(d) if d else None)[0]
    pixels = pixels.reshape(-1, 2)
    np.testing.assert_allclose(camera.normalise(pixels), normalised, atol=1e-7)
    np.testing.assert_allclose(camera.project(normalised), pixels, atol=1e-6)
    np.testing.assert_allclose(camera.undistort_pixels(pixels), normalised * 400 + (320, 240), atol=1e-4)


@pytest.mark.parametrize('fields, needle', [
    (dict(distortion_model='kannala'), 'not one of'),
    (dict(d=[0.1, 0.2, 0.3]), 'plumb_bob takes 0 or 4 or 5'),
    (dict(distortion_model='equidistant', d=[]), 'equidistant takes 4'),
    (dict(k=[0.0] * 9), 'uncalibrated'),
    (dict(width=0), 'empty'),
    (dict(binning_x=2), 'binning'),
])
def test_unusable_camera_info_is_refused_with_a_reason(fields, needle):
    with pytest.raises(CalibrationRejected, match=needle):
        CameraModel.from_camera_info(camera_info(**fields))


def test_latest_calibration_reports_refusals_and_size_mismatches():
    latest = LatestCalibration()
    assert latest.for_image(640, 480) == (None, None)
    assert latest.status() == ('none received: outputs in pixels', None)
    assert latest.offer(camera_info()) is None
    camera, problem = latest.for_image(640, 480)
    assert camera is not None and problem is None
    assert latest.status() == ('plumb_bob 640x480', None)
    camera, problem = latest.for_image(320, 240)
    assert camera is None and problem == 'camera_info is for 640x480 images, the images are 320x240'
    assert latest.status()[1] == f'camera_info not used: {problem}'
    assert 'uncalibrated' in latest.offer(camera_info(k=[0.0] * 9))
    assert latest.status()[1].startswith('camera_info rejected: uncalibrated')
    assert latest.camera is camera or latest.camera is not None  # the usable one is kept
    latest.offer(camera_info(width=320, height=240))
    assert latest.for_image(320, 240)[1] is None and latest.status()[1] is None


# --- VINS layout -------------------------------------------------------------------------------------------
def test_vins_layouts():
    ids = np.array([5, 7, 2**24 + 3], np.uint64)
    lengths = np.array([1, 2, 4])
    pixels = np.array([[10.5, 20.0], [30.0, 40.0], [50.0, 60.0]])
    normalised = np.array([[-0.1, 0.2], [0.3, -0.4], [0.5, 0.6]])
    velocities = np.array([[0.0, 0.0], [1.5, -2.0], [0.25, 0.5]])
    tracked = TrackedPoints(ids, lengths, pixels, normalised, velocities)
    mono = feature_cloud(tracked, VinsLayout('mono'))
    assert tuple(mono.channels) == MONO_CHANNELS == (
        'id_of_point', 'u_of_point', 'v_of_point', 'velocity_x_of_point', 'velocity_y_of_point')
    # Only tracks seen twice or more; ids modulo 2**24 so that float32 holds them exactly.
    assert mono.channels['id_of_point'].tolist() == [7.0, 3.0]
    np.testing.assert_array_equal(mono.points, np.float32([[0.3, -0.4, 1], [0.5, 0.6, 1]]))
    assert mono.channels['u_of_point'].tolist() == [30.0, 50.0]
    assert mono.channels['velocity_y_of_point'].tolist() == [-2.0, 0.5]
    assert all(v.dtype == np.float32 for v in mono.channels.values())

    fusion = feature_cloud(tracked, VinsLayout('fusion', camera_id=1))
    assert tuple(fusion.channels)[:6] == ('id_of_point', 'camera_id_of_point', 'u_of_point', 'v_of_point',
                                          'velocity_x_of_point', 'velocity_y_of_point')
    assert tuple(fusion.channels) == FUSION_CHANNELS and len(FUSION_CHANNELS) == 9
    assert fusion.channels['id_of_point'].tolist() == [5.0, 7.0, 3.0]  # every track
    assert fusion.channels['camera_id_of_point'].tolist() == [1.0, 1.0, 1.0]
    assert not any(fusion.channels[name].any() for name in FUSION_CHANNELS[6:])
    assert ID_MODULUS == 2**24 and float(np.float32(ID_MODULUS - 1)) == ID_MODULUS - 1
    with pytest.raises(ValueError, match='not one of'):
        VinsLayout('openvins')


# --- Drawing -----------------------------------------------------------------------------------------------
def test_drawing_keeps_the_input_size_and_colours_by_track_length():
    colors = length_colors(np.array([1, FULL_LENGTH, 50]))
    assert colors.tolist() == [[255, 0, 0], [0, 0, 255], [0, 0, 255]]  # BGR: blue new, red long
    for image, order in ((np.full((48, 64), 128, np.uint8), 'bgr'), (np.zeros((48, 64, 4), np.uint8), 'rgb'),
                         (np.full((48, 64), 40000, np.uint16), 'bgr')):
        assert to_bgr8(image, order).shape == (48, 64, 3)
        canvas = draw_tracks(image, np.array([[10.0, 10.0], [40.0, 30.0]]), np.array([1, FULL_LENGTH]),
                             [np.zeros((0, 2)), np.array([[30.0, 30.0]])], order)
        assert canvas.shape == (48, 64, 3) and canvas.dtype == np.uint8
        assert canvas[10, 10].tolist() == [255, 0, 0] and canvas[30, 40].tolist() == [0, 0, 255]
        assert canvas[30, 35, 2] > canvas[30, 35, 0]  # the red track's line from (30, 30)


def test_trails_follow_track_ids():
    trails = TrackTrails(length=2)
    assert [len(t) for t in trails.update(np.array([1, 2]), np.array([[0.0, 0], [5, 5]]))] == [0, 0]
    trails.update(np.array([1, 3]), np.array([[1.0, 0], [9, 9]]))
    got = trails.update(np.array([3, 1, 2]), np.array([[9.0, 8], [2, 0], [5, 5]]))
    assert got[0].tolist() == [[9.0, 9.0]]
    assert got[1].tolist() == [[0.0, 0.0], [1.0, 0.0]]
    assert len(got[2]) == 0  # track 2 was not in the previous frame


# --- The tracker on real photographs -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def photo():
    image = cv2.imread(str(DATA / "images" / "heldout" / "building.png"))
    assert image is not None, "run scripts/fetch_data.sh"
    return image


def crop(image, x, y, width=320, height=240):
    return np.ascontiguousarray(image[y:y + height, x:x + width])


def tracker(**settings):
    return FeatureTracker(FeatureConfig(device="cpu", top_k=256, **settings))


@pytest.mark.parametrize('check', ['fundamental', 'homography'])
def test_a_shifted_photo_keeps_each_point_on_its_track(photo, check):
    """Crops moving 3 px right and 2 px down per frame: the same physical point keeps its id.

    A shifted photo is one plane seen by a translating camera, where the fundamental matrix is not
    determined: its check lets through the odd wrong match the homography check removes. Both also keep a
    few keypoints that the crop's bottom edge makes, which slide along that edge (2 px off the shift)."""
    front_end = tracker(geometric_check=check)
    step = np.array([3.0, 2.0])
    frames = [front_end.process(crop(photo, 200 - 3 * i, 150 - 2 * i), stamp_ns=i * 100_000_000)
              for i in range(12)]
    errors = []
    for earlier, later in zip(frames, frames[1:]):
        shared, i0, i1 = np.intersect1d(earlier.track_ids, later.track_ids, return_indices=True)
        assert len(shared) == len(later.matches), 'an id was inherited without a kept match'
        assert len(shared) >= 0.8 * len(later.features), f'only {len(shared)} tracks continue'
        motion = later.features.keypoints[i1] - earlier.features.keypoints[i0]
        errors.append(np.linalg.norm(motion - step, axis=1))
        assert later.inlier_ratio > 0.95
    errors = np.concatenate(errors)
    assert np.mean(errors < 1.0) >= 0.97, f'{np.mean(errors < 1.0):.1%} of inherited ids moved with the photo'
    if check == 'homography':
        assert errors.max() <= 2.5, errors.max()
    last = frames[-1]
    first_ids = set(frames[0].track_ids.tolist())
    survivors = [i for i, t in enumerate(last.track_ids.tolist()) if t in first_ids]
    assert len(survivors) >= 100, f'only {len(survivors)} tracks live through 12 frames'
    assert np.all(last.track_lengths[survivors] == 12)
    stats = front_end.statistics()
    assert stats.tracks.alive_share > 0.5 and stats.inlier_ratio_mean > 0.95
    assert stats.tracks.started == len(set(np.concatenate([f.track_ids for f in frames]).tolist()))


def test_velocities_in_normalised_units_per_second(photo):
    """A 4 px per frame shift at 10 Hz seen by a camera with fx = 400 px: 0.1 normalised units per second."""
    camera = CameraModel.from_camera_info(camera_info(d=(), width=320, height=240))
    front_end = tracker()
    first = front_end.process(crop(photo, 200, 150), stamp_ns=10**9, camera=camera)
    second = front_end.process(crop(photo, 196, 150), stamp_ns=10**9 + 100_000_000, camera=camera)
    np.testing.assert_allclose(first.normalised, (first.features.keypoints - (320, 240)) / 400, atol=1e-6)
    assert not first.velocities.any()
    moving = second.matches[:, 1]
    assert len(moving) > 50
    np.testing.assert_allclose(np.median(second.velocities[moving], axis=0), (0.1, 0.0), atol=0.005)
    new = np.setdiff1d(np.arange(len(second.features)), moving)
    assert not second.velocities[new].any(), 'a new track has no velocity'
    assert front_end.process(crop(photo, 196, 150), camera=None).normalised is None


def layered(photo, step: int, near=12, far=2):
    """A camera moving sideways past two layers: the left half (near) moves ``near`` px per step, the right
    half (far) ``far`` px. Not one plane, so the epipolar geometry is determined (horizontal lines)."""
    return np.hstack([crop(photo, 150 - near * step, 150, 160), crop(photo, 500 - far * step, 150, 160)])


def relocate_patches(image, rng, count=24, size=20, min_shift=12):
    """Copies of small patches of ``image`` pasted elsewhere, each at least ``min_shift`` px up or down
    from where it was: keypoints on them match their originals with motions no camera motion explains."""
    out = image.copy()
    height, width = image.shape[:2]
    for _ in range(count):
        x, y = rng.integers(0, width - size), rng.integers(0, height - size)
        while True:
            tx, ty = rng.integers(0, width - size), rng.integers(0, height - size)
            if abs(ty - y) >= min_shift:
                break
        out[ty:ty + size, tx:tx + size] = image[y:y + size, x:x + size]
    return out


def wrong_and_kept(check, first, second, expected_motion):
    """(wrong matches kept, correct matches kept) by a tracker with ``check`` on the frame pair; wrong: more
    than 3 px off ``expected_motion(previous points)``. Also checks that ids pass along kept matches only."""
    front_end = tracker(geometric_check=check)
    previous = front_end.process(first)
    current = front_end.process(second)
    points0 = previous.features.keypoints[current.matches[:, 0]]
    motion = current.features.keypoints[current.matches[:, 1]] - points0
    wrong = np.linalg.norm(motion - expected_motion(points0), axis=1) > 3.0
    shared, i0, i1 = np.intersect1d(previous.track_ids, current.track_ids, return_indices=True)
    kept = {(int(a), int(b)) for a, b in current.matches.tolist()}
    assert {(int(a), int(b)) for a, b in zip(i0, i1)} == kept, 'an id passed along a rejected match'
    assert (current.inlier_ratio == 1.0) == (check == 'off' or current.candidate_matches == len(current.matches))
    return int(wrong.sum()), int((~wrong).sum())


def test_the_fundamental_check_removes_most_injected_wrong_matches(photo):
    """Two layers at different depths, wrong matches injected by relocated patches (three pairs)."""
    def layer_motion(points):  # near layer (x < 160 after the move) 12 px, far layer 2 px, to the right
        return np.where(points[:, :1] < 160 - 12, (12.0, 0.0), (2.0, 0.0))
    totals = {'off': [0, 0], 'fundamental': [0, 0]}
    for seed in (4, 5, 6):
        second = relocate_patches(layered(photo, 1), np.random.default_rng(seed))
        for check in totals:
            wrong, right = wrong_and_kept(check, layered(photo, 0), second, layer_motion)
            totals[check][0] += wrong
            totals[check][1] += right
    (wrong_off, right_off), (wrong_checked, right_checked) = totals['off'], totals['fundamental']
    assert wrong_off >= 15, f'the relocated patches gave only {wrong_off} wrong matches'
    # Matches at small motions constrain the epipolar lines only loosely (a 2 px band around a 12 px motion
    # admits lines up to 10 degrees off), so some wrong matches survive: most must not.
    assert wrong_checked <= wrong_off / 3, (wrong_checked, wrong_off)
    assert right_checked >= 0.97 * right_off, (right_checked, right_off)


def test_the_homography_check_removes_every_injected_wrong_match_on_a_plane(photo):
    for seed in (4, 5, 6):
        second = relocate_patches(crop(photo, 195, 153), np.random.default_rng(seed))
        wrong_off, right_off = wrong_and_kept('off', crop(photo, 200, 150), second, lambda p: (5.0, -3.0))
        wrong, right = wrong_and_kept('homography', crop(photo, 200, 150), second, lambda p: (5.0, -3.0))
        assert wrong_off >= 5 and wrong == 0, (wrong_off, wrong)
        assert right >= 0.97 * right_off, (right, right_off)
