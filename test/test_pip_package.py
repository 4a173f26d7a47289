"""The pip package (setup.cfg: the ROS-free core, rfnet_ros.ros left out) in an environment without ROS.

`pip install --no-deps --target` installs this checkout's package as a user's `pip install .` would, into a
fresh virtual environment that sees only that package and the distributions setup.cfg's install_requires
name, with their own requirements (taken from this environment's site-packages, where the ROS 2 wheels also
live: they are left out). There, rclpy does not import, and the installed console scripts rfnet-bag and
rfnet-track write a bag of a video and print track statistics from it.
"""
import configparser
import os
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT / 'data' / 'video' / 'vtest.avi'

# Runs a console script of the installed package by its entry point, as the script pip writes would.
RUN_SCRIPT = """
import sys
from importlib.metadata import entry_points
(script,) = entry_points(group='console_scripts', name=sys.argv[1])
sys.argv = sys.argv[1:]
sys.exit(script.load()())
"""


def install_requires() -> list[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / 'setup.cfg')
    return [line for line in config['options']['install_requires'].splitlines() if line.strip()]


def requirement_closure(requirements: list[str]) -> list:
    """The installed distributions ``requirements`` name, and theirs, without extras."""
    found, pending = {}, [Requirement(r) for r in requirements]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in found or (requirement.marker and not requirement.marker.evaluate({'extra': ''})):
            continue
        try:
            found[name] = distribution(requirement.name)
        except PackageNotFoundError:
            pytest.fail(f'{requirement.name} (needed by the pip package) is not installed here', pytrace=False)
        pending += [Requirement(r) for r in found[name].requires or ()]
    return list(found.values())


def link_distributions(distributions: list, site: Path) -> None:
    """Symbolic links in ``site`` to the top-level files and folders of ``distributions``."""
    for dist in distributions:
        top = {Path(file).parts[0] for file in dist.files or () if not str(file).startswith('..')}
        for name in top:
            source = Path(dist.locate_file(name))
            if source.exists() and not (site / name).exists():
                (site / name).symlink_to(source)


@pytest.fixture(scope='module')
def ros_free_python(tmp_path_factory):
    """A python without ROS whose only packages are the pip-installed rfnet_ros and its requirements."""
    if not VIDEO.is_file():
        pytest.fail(f'{VIDEO} missing: run bash scripts/fetch_data.sh', pytrace=False)
    work = tmp_path_factory.mktemp('pip_package')
    source = work / 'source'  # a copy: pip's build writes build/ and *.egg-info where it builds
    source.mkdir()
    for name in ('setup.py', 'setup.cfg', 'package.xml', 'README.md'):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / 'rfnet_ros', source / 'rfnet_ros', ignore=shutil.ignore_patterns('__pycache__'))
    package = work / 'package'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps', '--no-build-isolation',
                    '--disable-pip-version-check', '--target', str(package), str(source)],
                   check=True, capture_output=True, text=True, timeout=300)
    requirements = work / 'requirements'
    requirements.mkdir()
    link_distributions(requirement_closure(install_requires()), requirements)
    venv = work / 'venv'
    subprocess.run([sys._base_executable, '-m', 'venv', '--without-pip', str(venv)], check=True, timeout=120)
    python = venv / 'bin' / 'python'
    purelib = subprocess.run([str(python), '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, 'rfnet_ros_pip_test.pth').write_text(f'{package}\n{requirements}\n')
    # No ROS in the environment either: no sourced workspace, no PYTHONPATH into the colcon install.
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(('AMENT', 'COLCON', 'ROS', 'RMW', 'PYTHON', 'VIRTUAL_ENV', 'LD_LIBRARY'))}
    env['PATH'] = os.pathsep.join([str(venv / 'bin'), '/usr/bin', '/bin'])
    return python, env, work


def run(python, env, *args, cwd):
    return subprocess.run([str(python), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_no_ros_in_the_environment(ros_free_python):
    python, env, work = ros_free_python
    for module in ('rclpy', 'rfnet_ros.ros', 'rfnet_ros.msg'):
        result = run(python, env, '-c', f'import {module}', cwd=work)
        assert result.returncode != 0 and 'ModuleNotFoundError' in result.stderr, module
    result = run(python, env, '-c', 'import rfnet_ros; print(rfnet_ros.__file__)', cwd=work)
    assert result.returncode == 0 and result.stdout.startswith(str(work / 'package')), result.stderr


def test_rfnet_track_reads_a_bag(ros_free_python):
    python, env, work = ros_free_python
    bag = work / 'bag'
    made = run(python, env, '-c', RUN_SCRIPT, 'rfnet-bag', str(VIDEO), str(bag), '--resize', '320x240',
               '--max-frames', '3', '--compressed', 'png', cwd=work)
    assert made.returncode == 0, made.stderr
    assert 'rfnet-bag: wrote 3 frames' in made.stdout
    tracked = run(python, env, '-c', RUN_SCRIPT, 'rfnet-track', str(bag), '--set', 'top_k=128', cwd=work)
    assert tracked.returncode == 0, tracked.stderr
    assert 'rfnet-track: 3 frames of bag (320x240, detector 320x240, top_k 128' in tracked.stdout
    assert 'mean length' in tracked.stdout and 'inlier ratio' in tracked.stdout
