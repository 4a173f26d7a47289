"""Start rfnet_stereo_node (executable stereo_node) on a stereo camera with config/stereo.yaml.

    ros2 launch rfnet_ros stereo.launch.py namespace:=stereo          # /stereo/left/image_rect, ...
    ros2 launch rfnet_ros stereo.launch.py left_image:=/camera/infra1/image_rect_raw \
        right_image:=/camera/infra2/image_rect_raw                    # RealSense (camera_info beside each)
    ros2 launch rfnet_ros stereo.launch.py left_image:=/zed/zed_node/left/image_rect_color \
        right_image:=/zed/zed_node/right/image_rect_color             # ZED
    ros2 launch rfnet_ros stereo.launch.py params_file:=/path/to/my_stereo.yaml

Outputs go to <namespace>/left/keypoints, right/keypoints, left/matches, stereo_matches, timing and feature,
and /diagnostics. Each camera's camera_info is by default the one beside its image, as image_transport pairs
them. Parameter defaults live in the YAML file, not here; `device` overrides the file's only when it is given.
Which remappings the node gets is decided in rfnet_ros.ros.cameras.stereo_node (unit-tested without ROS).
"""
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription
from rfnet_ros.ros.cameras import STEREO_ARGUMENTS, stereo_node


def start_node(context):
    """The stereo node, from the launch arguments' values."""
    values = {name: LaunchConfiguration(name).perform(context) for name in ('params_file', *STEREO_ARGUMENTS)}
    plan = stereo_node(**values)
    return [Node(package='rfnet_ros', executable='stereo_node', name='rfnet_stereo_node', namespace=plan.namespace,
                 parameters=plan.parameters, remappings=plan.remappings, output='screen', emulate_tty=True)]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution([FindPackageShare('rfnet_ros'), 'config', 'stereo.yaml']),
            description='ROS 2 parameters file of the node (every parameter with its value)'),
        *(DeclareLaunchArgument(name, default_value=default, description=description)
          for name, (default, description) in STEREO_ARGUMENTS.items()),
        OpaqueFunction(function=start_node),
    ])
