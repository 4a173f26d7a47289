"""Unit tests of rfnet_ros.ros.parameters' command-line checks (no ROS graph; needs the ROS 2 Python packages)."""
import pytest

from rfnet_ros.ros.parameters import ParameterError, check_command_line_types, command_line_values

NODE = 'rfnet_feature_node'


def test_param_values_are_read_from_ros_args_sections_only():
    argv = ['lite_node', '-p', 'top_k:=1', '--ros-args', '--params-file', 'x.yaml', '-p', 'top_k:=abc',
            '-r', '__ns:=/front', '--param', 'device:=cuda:0', '-p', 'other_node:nms_size:=3',
            '-p', f'{NODE}:border:=4', '--', '-p', 'weights:=w.pt']
    assert command_line_values(argv, NODE) == {'top_k': 'abc', 'device': 'cuda:0', 'border': '4'}


@pytest.mark.parametrize('name,text', [('top_k', 'abc'), ('top_k', '5.5'), ('score_threshold', '1'),
                                       ('publish_descriptors', '1'), ('weights', '12'), ('top_k', 'true')])
def test_mistyped_values_are_refused_naming_the_parameter(name, text):
    with pytest.raises(ParameterError, match=f"invalid parameter {name}: expected .* got '{text}'"):
        check_command_line_types({name: text})


def test_well_typed_and_unknown_values_pass():
    check_command_line_types({'top_k': '64', 'score_threshold': '0.5', 'publish_descriptors': 'false',
                              'weights': '/tmp/w.pt', 'device': 'cuda:0', 'not_a_setting': 'x'})
