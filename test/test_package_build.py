"""Checks of the colcon install tree (install/rfnet_ros), not of the source tree.

ROS BUILD TEST: needs `bash scripts/setup_env.sh` (which builds) and `source scripts/env.sh` in the
shell that runs pytest. Without them it fails, saying so, rather than skipping: a missing or broken
build is exactly what it is there to catch.
"""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / 'install' / 'rfnet_ros'
SETUP_HINT = 'run `bash scripts/setup_env.sh`, then `source scripts/env.sh`, then pytest'


@pytest.fixture(scope='module', autouse=True)
def built():
    if not (INSTALL / 'share' / 'rfnet_ros' / 'package.xml').is_file():
        pytest.fail(f'no colcon install tree at {INSTALL}: {SETUP_HINT}', pytrace=False)


@pytest.fixture(scope='module')
def msg():
    try:
        from rfnet_ros import msg
    except ImportError as exc:
        pytest.fail(f'rfnet_ros.msg does not import ({exc}): {SETUP_HINT}', pytrace=False)
    return msg


def installed_python_package():
    found = sorted(INSTALL.glob('lib/python3*/site-packages/rfnet_ros'))
    assert len(found) == 1, f'expected one installed rfnet_ros package, found {found}'
    return found[0]


def test_messages_come_from_this_install(msg):
    assert Path(msg.__file__).resolve().is_relative_to(INSTALL.resolve())


def test_message_fields(msg):
    header = {'header': 'std_msgs/Header'}
    assert msg.Keypoints.get_fields_and_field_types() == {
        **header,
        'image_width': 'uint32', 'image_height': 'uint32',
        'x': 'sequence<float>', 'y': 'sequence<float>', 'score': 'sequence<float>',
        'scale': 'sequence<float>', 'orientation': 'sequence<float>',
        'descriptor_size': 'uint32', 'descriptors': 'sequence<float>',
        'track_ids': 'sequence<uint64>',
    }
    assert msg.Matches.get_fields_and_field_types() == {
        **header,
        'previous_stamp': 'builtin_interfaces/Time',
        'previous_index': 'sequence<uint32>', 'current_index': 'sequence<uint32>',
        'distance': 'sequence<float>',
    }
    assert msg.FrameTiming.get_fields_and_field_types() == {
        **header,
        **{f'{stage}_ms': 'float' for stage in
           ('convert', 'preprocess', 'detect', 'describe', 'match', 'publish', 'total')},
        'device': 'string', 'engine': 'string', 'precision': 'string',
        'num_keypoints': 'uint32', 'num_matches': 'uint32',
        'frames_dropped': 'uint64', 'frames_rejected': 'uint64', 'frames_lost': 'uint64',
        'inlier_ratio': 'float',
    }


def filled_messages(msg):
    """One message of each type with every field set (values exact in float32)."""
    from builtin_interfaces.msg import Time

    def stamped(m):
        m.header.stamp = Time(sec=1_700_000_000, nanosec=123_456_789)
        m.header.frame_id = 'camera_optical'
        return m

    keypoints = stamped(msg.Keypoints(
        image_width=640, image_height=480,
        x=[10.5, 20.25], y=[5.0, 479.75], score=[0.5, 0.125], scale=[3.0, 21.0],
        orientation=[-3.0, 1.5], descriptor_size=3,
        descriptors=[0.5, 0.5, 0.0, 0.0, 1.0, 0.0], track_ids=[0, 2**64 - 1]))
    matches = stamped(msg.Matches(
        previous_stamp=Time(sec=1_699_999_999, nanosec=990_000_000),
        previous_index=[0, 7, 2**32 - 1], current_index=[1, 0, 5], distance=[0.25, 0.75, 1.5]))
    timing = stamped(msg.FrameTiming(
        convert_ms=0.25, preprocess_ms=1.5, detect_ms=20.0, describe_ms=12.5, match_ms=0.75,
        publish_ms=0.125, total_ms=35.125, device='cpu', precision='fp32',
        num_keypoints=512, num_matches=300, frames_dropped=2**40, frames_rejected=3, inlier_ratio=0.75))
    return [keypoints, matches, timing]


def test_messages_round_trip_through_serialization(msg):
    from rclpy.serialization import deserialize_message, serialize_message

    for original in filled_messages(msg):
        data = serialize_message(original)
        assert deserialize_message(data, type(original)) == original, type(original).__name__


PUBLISHER = """
import time
import rclpy
from rfnet_ros.msg import Keypoints
rclpy.init()
node = rclpy.create_node('build_test_publisher')
pub = node.create_publisher(Keypoints, 'build_test_keypoints', 10)
end = time.monotonic() + 20
while time.monotonic() < end:
    pub.publish(Keypoints(image_width=640, x=[1.5, 2.5], descriptor_size=1, descriptors=[0.5, 1.0]))
    time.sleep(0.05)
"""

SUBSCRIBER = """
import time
import rclpy
from rfnet_ros.msg import Keypoints
rclpy.init()
node = rclpy.create_node('build_test_subscriber')
got = []
node.create_subscription(Keypoints, 'build_test_keypoints', got.append, 10)
end = time.monotonic() + 15
while not got and time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.1)
print(f'{got[0].image_width} {list(got[0].x)} {list(got[0].descriptors)}' if got else 'nothing')
"""


def test_messages_cross_processes_over_the_middleware(tmp_path):
    """A publisher and a subscriber process exchange a Keypoints message through DDS."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(100 + os.getpid() % 100),
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    if env.get('ROS_DISTRO') == 'humble':  # before ROS_AUTOMATIC_DISCOVERY_RANGE existed
        env['ROS_LOCALHOST_ONLY'] = '1'
    # cwd outside the source tree: the processes import the installed package.
    publisher = subprocess.Popen([sys.executable, '-c', PUBLISHER], env=env, cwd=tmp_path,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        received = subprocess.run([sys.executable, '-c', SUBSCRIBER], env=env, cwd=tmp_path,
                                  capture_output=True, text=True, timeout=30)
    finally:
        publisher.kill()
        publisher_err = publisher.communicate()[1]
    assert received.returncode == 0, received.stderr + publisher_err
    assert received.stdout.strip() == '640 [1.5, 2.5] [0.5, 1.0]', received.stderr + publisher_err


def test_keypoints_descriptors_are_row_major(msg):
    import numpy as np

    descriptors = np.arange(12, dtype=np.float32).reshape(4, 3)
    m = msg.Keypoints(descriptor_size=3, descriptors=descriptors.ravel().tolist())
    back = np.asarray(m.descriptors, dtype=np.float32).reshape(-1, m.descriptor_size)
    assert np.array_equal(back, descriptors)


@pytest.mark.parametrize('name, module', [('feature_node', 'rfnet_ros.ros.node'),
                                          ('lite_node', 'rfnet_ros.ros.node'),
                                          ('record', 'rfnet_ros.ros.recorder'),
                                          ('make_bag', 'rfnet_ros.cli.make_bag'),
                                          ('player', 'rfnet_ros.ros.player')])
def test_executables_installed(name, module):
    path = INSTALL / 'lib' / 'rfnet_ros' / name
    assert path.is_file(), f'{path} missing'
    assert os.access(path, os.X_OK), f'{path} is not executable'
    source = path.read_text()
    interpreter = Path(source.splitlines()[0].removeprefix('#!'))
    assert os.access(interpreter, os.X_OK), f'{path}: interpreter {interpreter} not found'
    assert f'from {module} import main' in source
    compile(source, str(path), 'exec')
    # The module it runs is installed and defines main() (read, not imported: no torch here).
    target = installed_python_package().joinpath(*module.split('.')[1:]).with_suffix('.py')
    assert target.is_file(), f'{name} runs {module}, but {target} is not installed'
    tree = ast.parse(target.read_text())
    assert any(isinstance(node, ast.FunctionDef) and node.name == 'main' for node in tree.body), \
        f'{target} defines no main()'


def test_python_sources_installed_beside_generated_messages():
    package = installed_python_package()
    source = ROOT / 'rfnet_ros'
    wanted = {p.relative_to(source) for p in source.rglob('*')
              if p.is_file() and '__pycache__' not in p.parts and p.suffix != '.pyc'}
    wanted.discard(Path('__init__.py'))  # the top-level one is rosidl's
    installed = {p.relative_to(package) for p in package.rglob('*') if p.is_file()}
    missing = sorted(map(str, wanted - installed))
    assert not missing, f'not installed (rebuild: bash scripts/setup_env.sh): {missing}'
    # Sub-package __init__.py files are installed (only the top-level one is left out) ...
    for init in source.glob('*/__init__.py'):
        assert (package / init.relative_to(source)).is_file(), init
    # ... and the top-level one is rosidl's, beside the generated messages.
    assert (package / '__init__.py').is_file()
    assert (package / 'msg' / '__init__.py').is_file()


@pytest.mark.parametrize('folder', ['launch', 'config'])
def test_share_folders_installed(folder):
    source = ROOT / folder
    if not source.is_dir():
        pytest.skip(f'no {folder}/ in the source tree yet')
    installed = INSTALL / 'share' / 'rfnet_ros' / folder
    assert installed.is_dir(), f'{installed} missing: rebuild with bash scripts/setup_env.sh'
    files = sorted(p.relative_to(source) for p in source.rglob('*') if p.is_file())
    assert files == sorted(p.relative_to(installed) for p in installed.rglob('*') if p.is_file())
