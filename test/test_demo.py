"""The demo (bash scripts/demo.sh runs it) end to end, shortened to a few processed frames.

ROS TEST: needs the install tree, the demo video (bash scripts/fetch_data.sh) and the shipped weights.
"""
import sys

import pytest
from ros_harness import DEMO_DOMAIN, ROOT, STARTUP_TIMEOUT, ChildProcess, require_install

VIDEO = ROOT / 'data' / 'video' / 'vtest.avi'


def test_demo_runs_and_summarises():
    require_install()
    if not VIDEO.is_file():
        pytest.fail(f'{VIDEO} missing: run bash scripts/fetch_data.sh', pytrace=False)
    demo = ChildProcess([sys.executable, '-m', 'rfnet_ros.ros.demo', '--frames', '4', '--rate', '5',
                         '--param', 'top_k:=128'], DEMO_DOMAIN, cwd=ROOT)
    status = demo.wait(STARTUP_TIMEOUT + 120)
    assert status == 0, demo.output
    summary = [line for line in demo.output.splitlines() if line.startswith('[demo] done:')]
    assert len(summary) == 1, demo.output
    assert '| keypoints' in summary[0] and '| matches' in summary[0] and 'detect' in summary[0]
    assert '| node overhead ' in summary[0] and '%' in summary[0]
    assert 'Traceback' not in demo.output
