"""Tests of the player: its frame sources (rfnet_ros.frame_sources: image folder, video, rosbag2 bag) and the
installed executable."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from ros_harness import ROOT, Probe, executable, require_install

from rfnet_ros.frame_sources import SourceError, frames
from rfnet_ros.stamps import from_nanoseconds

VIDEO = ROOT / 'data' / 'video' / 'vtest.avi'
RNG = np.random.default_rng(1)


def image_folder(folder: Path, count: int = 3, shape=(32, 48, 3)) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    images = [RNG.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]
    for i, image in enumerate(images):
        cv2.imwrite(str(folder / f'frame_{i:03d}.png'), image)
    (folder / 'notes.txt').write_text('not an image')
    return images


def test_folder_frames_in_name_order(tmp_path):
    images = image_folder(tmp_path)
    got = list(frames(tmp_path))
    assert len(got) == 3
    for (frame, stamp), image in zip(got, images):
        assert stamp is None
        np.testing.assert_array_equal(frame, image)


def test_mono_resize_and_loop(tmp_path):
    image_folder(tmp_path, count=2)
    source = frames(tmp_path, mono=True, resize=(24, 16), loop=True)
    got = [next(source)[0] for _ in range(5)]
    assert all(f.shape == (16, 24) and f.dtype == np.uint8 for f in got)


def test_video_frames():
    if not VIDEO.is_file():
        pytest.fail(f'{VIDEO} missing: run bash scripts/fetch_data.sh', pytrace=False)
    source = frames(VIDEO, resize=(320, 240))
    frame, stamp = next(source)
    assert frame.shape == (240, 320, 3) and stamp is None


def test_missing_or_empty_source(tmp_path):
    with pytest.raises(SourceError, match='no such file'):
        next(frames(tmp_path / 'absent.avi'))
    with pytest.raises(SourceError, match='no images'):
        next(frames(tmp_path))


def write_bag(path: Path, topics: dict[str, list[tuple[int, np.ndarray]]], compressed: set[str] = frozenset()):
    """A rosbag2 bag with sensor_msgs/Image (rgb8) or CompressedImage (png) messages per topic."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    Image, CompressedImage = store.types['sensor_msgs/msg/Image'], store.types['sensor_msgs/msg/CompressedImage']
    Header, Time = store.types['std_msgs/msg/Header'], store.types['builtin_interfaces/msg/Time']
    try:
        writer = Writer(path, version=9)
    except TypeError:  # rosbags before 0.10 has no version argument
        writer = Writer(path)
    with writer:
        for topic, messages in topics.items():
            msgtype = 'sensor_msgs/msg/CompressedImage' if topic in compressed else 'sensor_msgs/msg/Image'
            connection = writer.add_connection(topic, msgtype, typestore=store)
            for stamp, image in messages:
                header = Header(stamp=Time(**from_nanoseconds(stamp)._asdict()), frame_id='cam')
                if topic in compressed:
                    msg = CompressedImage(header=header, format='png',
                                          data=np.frombuffer(cv2.imencode('.png', image)[1].tobytes(), np.uint8))
                else:
                    rgb = np.ascontiguousarray(image[..., ::-1])
                    msg = Image(header=header, height=rgb.shape[0], width=rgb.shape[1], encoding='rgb8',
                                is_bigendian=0, step=rgb.shape[1] * 3, data=rgb.reshape(-1))
                writer.write(connection, stamp, store.serialize_cdr(msg, msgtype))


def test_bag_frames_keep_their_stamps(tmp_path):
    images = [RNG.integers(0, 256, (12, 16, 3), dtype=np.uint8) for _ in range(3)]
    stamps = [5 * 10**9 + i * 50_000_000 for i in range(3)]
    write_bag(tmp_path / 'bag', {'/camera/image_raw': list(zip(stamps, images)),
                                 '/camera/image_raw/compressed': list(zip(stamps, images))},
              compressed={'/camera/image_raw/compressed'})
    with pytest.raises(SourceError, match='several image topics'):
        next(frames(tmp_path / 'bag'))
    for topic in ('/camera/image_raw', '/camera/image_raw/compressed'):
        got = list(frames(tmp_path / 'bag', bag_topic=topic))
        assert [stamp for _, stamp in got] == stamps
        for (frame, _), image in zip(got, images):
            np.testing.assert_array_equal(frame, image)  # rgb8 and png both come back as BGR
    with pytest.raises(SourceError, match='no image topic /other'):
        next(frames(tmp_path / 'bag', bag_topic='/other'))


def test_player_executable_publishes_frames(tmp_path):
    require_install()
    from sensor_msgs.msg import Image
    image_folder(tmp_path / 'images', count=2)
    probe = Probe(name='rfnet_player_probe')
    try:
        probe.subscribe(Image, 'player_test/image')
        player = executable('player', str(tmp_path / 'images'), '--rate', '20', '--max-frames', '5', '--loop',
                            '--mono', '--resize', '24x16', '--frame-id', 'test_frame', '--wait-for-subscriber',
                            '--topic', 'player_test/image')
        status = player.wait(120)
        assert status == 0, player.output
        assert 'published 5 frames' in player.output
        received = probe.wait_for(lambda: len(probe.received('player_test/image')) >= 5 and
                                  probe.received('player_test/image'), '5 frames from the player', 10)
    finally:
        probe.close()
    for msg in received:
        assert (msg.encoding, msg.width, msg.height, msg.step) == ('mono8', 24, 16, 24)
        assert msg.header.frame_id == 'test_frame'
        assert msg.header.stamp.sec > 0
