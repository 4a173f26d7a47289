"""Start rfnet_feature_node with the lightweight RF-Net (config/lite.yaml) on one camera.

    ros2 launch rfnet_ros lite.launch.py image_topic:=/camera/image_raw
    ros2 launch rfnet_ros lite.launch.py namespace:=front image_topic:=/front/image_raw device:=cuda
    ros2 launch rfnet_ros lite.launch.py params_file:=/path/to/my.yaml

Outputs go to <namespace>/keypoints, <namespace>/matches and <namespace>/timing, and /diagnostics; one
launch per camera, each in its own namespace. Parameter defaults live in the YAML file, not here.

image_topic names the raw topic. With `image_transport: "compressed"` in the parameters file the node reads
<image_topic>/compressed instead (sensor_msgs/CompressedImage, as image_transport's compressed plugin
publishes it): both of the node's inputs, `image` and `image/compressed`, are remapped here.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution([FindPackageShare('rfnet_ros'), 'config', 'lite.yaml']),
            description='ROS 2 parameters file of the node (every parameter with its value)'),
        DeclareLaunchArgument(
            'image_topic', default_value='/camera/image_raw',
            description='sensor_msgs/Image topic to detect features on (remapped to the node\'s `image`; '
                        'its `image/compressed` reads <image_topic>/compressed)'),
        DeclareLaunchArgument(
            'namespace', default_value='',
            description='Namespace of the node and its outputs (one per camera)'),
        DeclareLaunchArgument(
            'device', default_value='auto',
            description='Torch device: auto (CUDA when present, else CPU), cpu, cuda or cuda:N'),
        Node(
            package='rfnet_ros',
            executable='lite_node',
            name='rfnet_feature_node',
            namespace=LaunchConfiguration('namespace'),
            parameters=[LaunchConfiguration('params_file'), {'device': LaunchConfiguration('device')}],
            remappings=[('image', LaunchConfiguration('image_topic')),
                        ('image/compressed', [LaunchConfiguration('image_topic'), '/compressed'])],
            output='screen',
            emulate_tty=True,
        ),
    ])
