"""Start rfnet_feature_node (executable feature_node) with the lightweight RF-Net (config/lite.yaml): one node
per camera.

    ros2 launch rfnet_ros lite.launch.py image_topic:=/camera/image_raw
    ros2 launch rfnet_ros lite.launch.py namespace:=front image_topic:=/front/image_raw device:=cuda
    ros2 launch rfnet_ros lite.launch.py cameras:="[front, rear]"     # /front/image_raw, /rear/image_raw, ...
    ros2 launch rfnet_ros lite.launch.py params_file:=/path/to/my.yaml

One camera: outputs go to <namespace>/keypoints, matches, timing, debug_image and feature, and /diagnostics;
the node reads image_topic and its camera_info (by default the camera_info beside the image, as
image_transport pairs them). Several cameras: `cameras` lists their namespaces and one node is started in each
(<namespace>/<camera>), reading /<camera>/<camera_image> and /<camera>/camera_info. Parameter defaults live in
the YAML file, not here; `device` overrides the file's only when it is given.

With `image_transport: "compressed"` in the parameters file the node reads <image topic>/compressed instead
(sensor_msgs/CompressedImage, as image_transport's compressed plugin publishes it): both of the node's
inputs, `image` and `image/compressed`, are remapped here. Which nodes start with which remappings is
decided in rfnet_ros.ros.cameras (unit-tested without ROS).
"""
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription
from rfnet_ros.ros.cameras import ARGUMENTS, camera_nodes


def start_nodes(context):
    """One Node per camera, from the launch arguments' values."""
    values = {name: LaunchConfiguration(name).perform(context) for name in ('params_file', *ARGUMENTS)}
    return [
        Node(
            package='rfnet_ros',
            executable='feature_node',
            name='rfnet_feature_node',
            namespace=plan.namespace,
            parameters=plan.parameters,
            remappings=plan.remappings,
            output='screen',
            emulate_tty=True,
        )
        for plan in camera_nodes(**values)
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution([FindPackageShare('rfnet_ros'), 'config', 'lite.yaml']),
            description='ROS 2 parameters file of the node (every parameter with its value)'),
        *(DeclareLaunchArgument(name, default_value=default, description=description)
          for name, (default, description) in ARGUMENTS.items()),
        OpaqueFunction(function=start_nodes),
    ])
