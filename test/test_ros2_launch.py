"""`ros2 launch rfnet_ros ...` for real: the installed launch files start their nodes over the real middleware.

The ROS 2 wheels do not carry `launch`, `launch_ros` or `ros2cli`, so these tests find them, in this order:

1. a `ros2` with the `launch` verb on the PATH (a sourced ROS 2 distribution, or the overlay below, sourced);
2. the upstream sources and installer of ../shared/ros2-launch beside the checkout (ROOT.parent / 'shared' /
   'ros2-launch'), or the folder named by RFNET_ROS2_LAUNCH_SOURCES: installed once per test session, as its
   README says, into the ignored folder .ros2-launch of the checkout (30 s to 2 min on 2 cores; a stamp naming
   the installer, the sources and the Python keeps a second session from installing again).

Where neither is present every test here is skipped, and the reason says so.

Each launch runs in a session of its own, so that SIGINT reaches it as a terminal's Ctrl-C would (a background
job of a non-interactive shell starts with SIGINT ignored, and launch keeps it ignored: the command below resets
it first). The tests check that the nodes start with the parameters of the file the launch names (through their
get_parameters service), that images published in come back as keypoints, and that SIGINT to the launch process
alone ends the launch with status 0, every node with it.

The stereo case starts stereo.launch.py on a RealSense-style pair of topics and gets stereo matches back.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from ros_harness import (
    FRAME_TIMEOUT,
    NODE_DOMAIN,
    ROOT,
    SHARE,
    STARTUP_TIMEOUT,
    ChildProcess,
    Probe,
    StampClock,
    crop,
    photo,
    require_install,
    ros_env,
    same_stamp,
)

from rfnet_ros.ros.cameras import ARGUMENTS, STEREO_ARGUMENTS

SOURCES_VARIABLE = 'RFNET_ROS2_LAUNCH_SOURCES'
DEFAULT_SOURCES = ROOT.parent / 'shared' / 'ros2-launch'
OVERLAY = ROOT / '.ros2-launch'
STAMP = OVERLAY / 'rfnet_ros-installed.sha256'
NODE_NAME = 'rfnet_feature_node'
INSTALL_TIMEOUT = 600.0
SHOW_ARGS_TIMEOUT = 120.0
SHUTDOWN_TIMEOUT = 60.0
# Starts `ros2 launch ARGS...` with SIGINT at its default action, after sourcing the overlay when one is named.
LAUNCHER = """\
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
setup, args = sys.argv[1], sys.argv[2:]
if setup:
    os.execvp('bash', ['bash', '-c', 'source "$0" >/dev/null && exec ros2 launch "$@"', setup, *args])
os.execvp('ros2', ['ros2', 'launch', *args])
"""


def ros2_on_path() -> bool:
    """A `ros2` on the PATH that has the `launch` verb."""
    ros2 = shutil.which('ros2')
    if ros2 is None:
        return False
    try:
        return subprocess.run([ros2, 'launch', '--help'], capture_output=True, timeout=SHOW_ARGS_TIMEOUT,
                              env=ros_env(NODE_DOMAIN)).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def installer_stamp(sources: Path) -> str:
    """What decides the overlay's content: the installer, its sources' checksums, where they are, the Python."""
    digest = hashlib.sha256()
    for path in (sources / 'install.sh', sources / 'tarballs' / 'SHA256SUMS'):
        digest.update(path.read_bytes() if path.is_file() else b'-')
    python = (ROOT / '.venv' / 'bin' / 'python').resolve()
    digest.update(f'{sources.resolve()}\n{python}\n{ROOT}'.encode())
    return digest.hexdigest()


def install_overlay(sources: Path) -> Path:
    """Install the launch tools from ``sources`` into .ros2-launch unless the stamp says it is done; the overlay's
    setup.bash."""
    setup = OVERLAY / 'setup.bash'
    wanted = installer_stamp(sources)
    if setup.is_file() and STAMP.is_file() and STAMP.read_text().strip() == wanted:
        return setup
    command = ['bash', str(sources / 'install.sh'), '--project', str(ROOT), '--dest', str(OVERLAY)]
    try:
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f'{" ".join(command)} still running after {INSTALL_TIMEOUT:.0f} s; output:\n{exc.stdout}')
    if result.returncode != 0 or not setup.is_file():
        pytest.fail(f'{" ".join(command)} failed with status {result.returncode}:\n{result.stdout}\n{result.stderr}')
    STAMP.write_text(wanted + '\n')
    return setup


@pytest.fixture(scope='session')
def ros2_launch() -> Callable[..., list[str]]:
    """A function of `ros2 launch` arguments giving the command that runs it; skips where there is no `ros2
    launch` to run and no sources to install it from."""
    require_install()
    named = os.environ.get(SOURCES_VARIABLE)
    if ros2_on_path():
        setup = ''
    elif named or (DEFAULT_SOURCES / 'install.sh').is_file():
        sources = Path(named) if named else DEFAULT_SOURCES
        if not (sources / 'install.sh').is_file():
            pytest.fail(f'{SOURCES_VARIABLE}={named}: no install.sh there (the folder of ros2-launch\'s README, '
                        'install.sh and tarballs/)', pytrace=False)
        setup = str(install_overlay(sources))
    else:
        pytest.skip(f'ros2 launch is not available: no `ros2` with the launch verb on the PATH, and no ros2-launch '
                    f'sources at {DEFAULT_SOURCES} (nor {SOURCES_VARIABLE} naming their folder) to install it from')

    def command(*args: str) -> list[str]:
        return [sys.executable, '-c', LAUNCHER, setup, *args]
    return command


def config_parameters(path: Path) -> dict:
    """The ros__parameters of a parameters file."""
    (entry,) = yaml.safe_load(path.read_text()).values()
    return dict(entry['ros__parameters'])


def node_parameters(probe: Probe, node: str, names: list[str]) -> dict:
    """The values of ``names`` as the node ``node`` (full name) reports them."""
    from rcl_interfaces.srv import GetParameters
    from rclpy.parameter import parameter_value_to_python

    values = probe.call(GetParameters, f'{node}/get_parameters', GetParameters.Request(names=names)).values
    return dict(zip(names, (parameter_value_to_python(value) for value in values)))


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def interrupt(process: ChildProcess) -> tuple[int, bool]:
    """SIGINT to the launch process alone, as Ctrl-C in its terminal; (its exit status, whether anything of its
    session outlived it). Kills what is left after SHUTDOWN_TIMEOUT, and fails then."""
    pid = process.process.pid
    if process.running():
        os.kill(pid, signal.SIGINT)
    try:
        status = process.process.wait(timeout=SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(pid, signal.SIGKILL)
        process.process.wait()
        pytest.fail(f'ros2 launch still running {SHUTDOWN_TIMEOUT:.0f} s after SIGINT; output:\n{process.output}')
    deadline = time.monotonic() + 10
    while group_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    leftover = group_alive(pid)
    if leftover:
        os.killpg(pid, signal.SIGKILL)
    process.wait(5)
    return status, leftover


@contextmanager
def launched(command: list[str], nodes: int, executable: str = 'feature_node'
             ) -> Iterator[tuple[ChildProcess, Probe]]:
    """`ros2 launch` in its own session and a probe; then SIGINT to the launch process must end it with status 0,
    its ``nodes`` nodes (of ``executable``) each finished cleanly, nothing left of its session and no traceback."""
    process = ChildProcess(command, NODE_DOMAIN, cwd=ROOT)
    probe = Probe(name='rfnet_launch_probe')
    try:
        yield process, probe
    finally:
        probe.close()
        status, leftover = interrupt(process)
        print(process.output)
    assert status == 0, f'ros2 launch exited with status {status} on SIGINT'
    assert not leftover, 'processes of the launch outlived it'
    assert 'Traceback' not in process.output
    finished = re.findall(rf'\[{executable}-\d+\]: process has finished cleanly', process.output)
    assert len(finished) == nodes, f'{len(finished)} of {nodes} nodes finished cleanly'


def wait_for_node(probe: Probe, process: ChildProcess, namespace: str) -> None:
    """The node ``namespace``/rfnet_feature_node is in the graph and subscribes to its image topic."""
    def up():
        return (NODE_NAME, namespace or '/') in probe.node.get_node_names_and_namespaces()
    probe.wait_for(up, f'{namespace}/{NODE_NAME} to start', STARTUP_TIMEOUT, process)


def feature_nodes(probe: Probe) -> set[str]:
    """The full names of the feature nodes in the graph."""
    return {f'{namespace.rstrip("/")}/{name}' for name, namespace in probe.node.get_node_names_and_namespaces()
            if name == NODE_NAME}


def keypoints_of(probe: Probe, process: ChildProcess, image_topic: str, keypoints_topic: str, image) -> object:
    """Publish ``image`` on ``image_topic`` (a new stamp every 2 s, until one comes back: the node keeps the newest
    frame only and its first frame may precede discovery) and return the keypoints of one of them."""
    from sensor_msgs.msg import Image

    from rfnet_ros.msg import Keypoints

    probe.subscribe(Keypoints, keypoints_topic)
    publisher = probe.publisher(Image, image_topic)
    probe.wait_for(lambda: publisher.get_subscription_count() > 0, f'a subscriber of {image_topic}',
                   STARTUP_TIMEOUT, process)
    probe.wait_for(lambda: probe.node.count_publishers(keypoints_topic) > 0, f'a publisher of {keypoints_topic}',
                   30, process)
    clock, sent = StampClock(), []
    deadline = time.monotonic() + FRAME_TIMEOUT
    while time.monotonic() < deadline:
        sent.append(probe.publish_image(image, clock.next(), topic=image_topic).stamp)
        try_until = min(deadline, time.monotonic() + 2.0)
        while time.monotonic() < try_until:
            for msg in probe.received(keypoints_topic):
                if any(same_stamp(msg.header.stamp, stamp) for stamp in sent):
                    return msg
            if not process.running():
                pytest.fail(f'ros2 launch exited with status {process.process.returncode}; output:\n'
                            f'{process.output}')
            time.sleep(0.05)
    pytest.fail(f'no keypoints on {keypoints_topic} for {len(sent)} frames published on {image_topic} in '
                f'{FRAME_TIMEOUT:.0f} s; output:\n{process.output}')


def check_keypoints(msg, top_k: int) -> None:
    assert (msg.image_width, msg.image_height) == (320, 240)
    assert 0 < len(msg.x) <= top_k and len(msg.y) == len(msg.score) == len(msg.x)
    assert len(msg.descriptors) == len(msg.x) * msg.descriptor_size


def show_args(ros2_launch, name: str) -> dict[str, tuple[str, str]]:
    """`ros2 launch rfnet_ros NAME --show-args` as {argument: (description, default)}, in the printed order."""
    result = subprocess.run(ros2_launch('rfnet_ros', name, '--show-args'), capture_output=True, text=True,
                            timeout=SHOW_ARGS_TIMEOUT, env=ros_env(NODE_DOMAIN), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    entries = re.findall(r"^    '(\w+)':\n((?:        .*\n)*?)        \(default: (.*)\)$", result.stdout, re.M)
    assert entries, result.stdout
    return {argument: (' '.join(description.split()), default) for argument, description, default in entries}


@pytest.mark.parametrize('name, config, other', [('lite.launch.py', 'lite.yaml', 'full.yaml'),
                                                 ('full.launch.py', 'full.yaml', 'lite.yaml')])
def test_show_args_lists_every_argument_with_its_default(ros2_launch, name, config, other):
    arguments = show_args(ros2_launch, name)
    assert list(arguments) == ['params_file', *ARGUMENTS]
    description, default = arguments['params_file']
    assert description and f"'config' + '{config}'" in default and other not in default, default
    for argument, (default, description) in ARGUMENTS.items():
        assert arguments[argument] == (' '.join(description.split()), repr(default))


def test_lite_launch_one_camera(ros2_launch):
    """The README's first command: one node on /camera/image_raw with lite.yaml."""
    expected = config_parameters(SHARE / 'config' / 'lite.yaml')
    with launched(ros2_launch('rfnet_ros', 'lite.launch.py'), nodes=1) as (process, probe):
        wait_for_node(probe, process, '')
        msg = keypoints_of(probe, process, '/camera/image_raw', '/keypoints', crop(photo(), 40, 30))
        check_keypoints(msg, expected['top_k'])
        assert node_parameters(probe, f'/{NODE_NAME}', sorted(expected)) == expected
        assert feature_nodes(probe) == {f'/{NODE_NAME}'}


def test_lite_launch_two_cameras(ros2_launch):
    """One node per camera, each in its namespace on its camera's image, with the device given at launch."""
    expected = {**config_parameters(SHARE / 'config' / 'lite.yaml'), 'device': 'cpu'}
    command = ros2_launch('rfnet_ros', 'lite.launch.py', 'cameras:=[front, rear]', 'device:=cpu')
    with launched(command, nodes=2) as (process, probe):
        image = photo()
        for camera in ('front', 'rear'):
            wait_for_node(probe, process, f'/{camera}')
        for camera, x in (('front', 40), ('rear', 200)):
            msg = keypoints_of(probe, process, f'/{camera}/image_raw', f'/{camera}/keypoints', crop(image, x, 30))
            check_keypoints(msg, expected['top_k'])
            assert node_parameters(probe, f'/{camera}/{NODE_NAME}', sorted(expected)) == expected
        assert feature_nodes(probe) == {f'/front/{NODE_NAME}', f'/rear/{NODE_NAME}'}


def test_full_launch_uses_the_users_params_file(ros2_launch, tmp_path):
    """`params_file:=` replaces full.yaml: a user's copy of full.yaml with another top_k is what the node runs."""
    text = (SHARE / 'config' / 'full.yaml').read_text()
    assert re.search(r'^    top_k: 512$', text, re.M), 'full.yaml sets top_k 512'
    params_file = tmp_path / 'my_full.yaml'
    params_file.write_text(re.sub(r'^    top_k: 512$', '    top_k: 77', text, flags=re.M))
    expected = config_parameters(params_file)
    assert expected['top_k'] == 77 and expected['replaced_layers'] == 0
    command = ros2_launch('rfnet_ros', 'full.launch.py', f'params_file:={params_file}')
    with launched(command, nodes=1) as (process, probe):
        wait_for_node(probe, process, '')
        msg = keypoints_of(probe, process, '/camera/image_raw', '/keypoints', crop(photo(), 40, 30))
        check_keypoints(msg, 77)
        assert node_parameters(probe, f'/{NODE_NAME}', sorted(expected)) == expected
        assert feature_nodes(probe) == {f'/{NODE_NAME}'}


def test_stereo_launch_remaps_a_realsense_pair(ros2_launch):
    """stereo.launch.py on a RealSense's infrared topics: the stereo node reads both images and their
    camera_infos from there and returns left-right matches; --show-args lists every argument."""
    import stereo_scene as scene
    from sensor_msgs.msg import CameraInfo, Image

    from rfnet_ros.msg import StereoMatches

    arguments = show_args(ros2_launch, 'stereo.launch.py')
    assert list(arguments) == ['params_file', *STEREO_ARGUMENTS]
    assert "'config' + 'stereo.yaml'" in arguments['params_file'][1]
    command = ros2_launch('rfnet_ros', 'stereo.launch.py', 'left_image:=/camera/infra1/image_rect_raw',
                          'right_image:=/camera/infra2/image_rect_raw')
    with launched(command, nodes=1, executable='stereo_node') as (process, probe):
        probe.subscribe(StereoMatches, '/stereo_matches')
        sides = (('infra1', False), ('infra2', True))
        images = [probe.publisher(Image, f'/camera/{side}/image_rect_raw') for side, _ in sides]
        probe.wait_for(lambda: all(p.get_subscription_count() > 0 for p in images), 'the stereo node',
                       STARTUP_TIMEOUT, process)
        pair, clock, sent = scene.render(photo('building.png'), photo('aero1.png')[150:300, 150:320]), \
            StampClock(), []
        deadline = time.monotonic() + FRAME_TIMEOUT
        while time.monotonic() < deadline and not any(
                same_stamp(m.header.stamp, s) for m in probe.received('/stereo_matches') for s in sent):
            stamp = clock.next()
            for (side, right), image in zip(sides, (pair.left, pair.right)):
                info = CameraInfo(**scene.camera_info_fields(right))
                info.header.stamp = stamp
                probe.publisher(CameraInfo, f'/camera/{side}/camera_info').publish(info)
                probe.publish_image(image, stamp, topic=f'/camera/{side}/image_rect_raw')
            sent.append(stamp)
            time.sleep(2.0)
        matches = [m for m in probe.received('/stereo_matches') if any(same_stamp(m.header.stamp, s) for s in sent)]
        assert matches and len(matches[0].left_index) > 50, process.output
