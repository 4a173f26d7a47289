"""Checks of launch/*.launch.py that need no `launch` package (it is not installed with the ROS wheels).

The files are read with `ast`: the node they start, its executable and name, the arguments they declare,
and the installed files they name (executables in install/.../lib/rfnet_ros, configs in
install/.../share/rfnet_ros/config, included launch files in share/rfnet_ros/launch). Which nodes start
with which namespaces, remappings and parameters is decided by rfnet_ros.ros.cameras, tested here directly.
test_ros2_launch.py runs the launch files with the real `ros2 launch` where it is available.
"""
import ast
import inspect

import pytest
from ros_harness import LIB, ROOT, SHARE, require_install

from rfnet_ros.ros.cameras import ARGUMENTS, STEREO_ARGUMENTS, camera_nodes, join, sibling_camera_info, stereo_node

LAUNCH = ROOT / 'launch'


def parse(name: str) -> ast.Module:
    return ast.parse((LAUNCH / name).read_text(), filename=name)


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and (getattr(node.func, 'id', None) == name or getattr(node.func, 'attr', None) == name)]


def keyword(call: ast.Call, name: str) -> ast.expr:
    found = [k.value for k in call.keywords if k.arg == name]
    assert found, f'{name}= missing in {ast.unparse(call)[:80]}'
    return found[0]


def string(node: ast.expr) -> str:
    assert isinstance(node, ast.Constant) and isinstance(node.value, str), ast.unparse(node)
    return node.value


def share_paths(tree: ast.AST) -> list[list[str]]:
    """The string parts of each PathJoinSubstitution([...]) that starts at FindPackageShare('rfnet_ros')."""
    out = []
    for call in calls(tree, 'PathJoinSubstitution'):
        parts = call.args[0].elts
        head = ast.unparse(parts[0])
        assert head in ("FindPackageShare('rfnet_ros')", 'share'), head
        out.append([string(p) for p in parts[1:]])
    return out


@pytest.fixture(scope='module', autouse=True)
def installed():
    require_install()


def test_launch_files_installed():
    for path in LAUNCH.glob('*.launch.py'):
        assert (SHARE / 'launch' / path.name).read_text() == path.read_text(), f'{path.name} not installed or stale'


def test_lite_launch_starts_one_node_per_camera_plan():
    """lite.launch.py declares params_file and every argument of rfnet_ros.ros.cameras, and turns each planned
    CameraNode into a Node of the installed feature_node executable."""
    tree = parse('lite.launch.py')
    (declared,) = [call for call in calls(tree, 'DeclareLaunchArgument') if call.args and
                   isinstance(call.args[0], ast.Constant)]
    assert string(declared.args[0]) == 'params_file' and string(keyword(declared, 'description'))
    assert ast.unparse(keyword(declared, 'default_value')) == \
        "PathJoinSubstitution([FindPackageShare('rfnet_ros'), 'config', 'lite.yaml'])"
    # The other arguments come from cameras.ARGUMENTS, each with its default and description.
    (generated,) = [call for call in calls(tree, 'DeclareLaunchArgument') if call is not declared]
    assert ast.unparse(generated) == \
        'DeclareLaunchArgument(name, default_value=default, description=description)'
    assert "for name, (default, description) in ARGUMENTS.items()" in ast.unparse(tree)
    assert set(inspect.signature(camera_nodes).parameters) == {'params_file', *ARGUMENTS}
    assert all(description for _, description in ARGUMENTS.values())

    (opaque,) = calls(tree, 'OpaqueFunction')
    assert ast.unparse(keyword(opaque, 'function')) == 'start_nodes'
    (start,) = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == 'start_nodes']
    assert "LaunchConfiguration(name).perform(context) for name in ('params_file', *ARGUMENTS)" in ast.unparse(start)
    (node,) = calls(start, 'Node')
    assert string(keyword(node, 'package')) == 'rfnet_ros'
    assert string(keyword(node, 'name')) == 'rfnet_feature_node'
    executable = string(keyword(node, 'executable'))
    assert executable == 'feature_node' and (LIB / executable).is_file(), f'{executable} is not installed in {LIB}'
    for field in ('namespace', 'parameters', 'remappings'):
        assert ast.unparse(keyword(node, field)) == f'plan.{field}'
    assert 'for plan in camera_nodes(**values)' in ast.unparse(start)


def test_one_camera_reads_its_image_and_the_camera_info_beside_it():
    (plan,) = camera_nodes('lite.yaml')
    assert plan.namespace == ''
    assert plan.remappings == [('image', '/camera/image_raw'), ('image/compressed', '/camera/image_raw/compressed'),
                               ('camera_info', '/camera/camera_info')]
    assert plan.parameters == ['lite.yaml'], 'device overrides the file only when it is given'
    (plan,) = camera_nodes('my.yaml', image_topic='/front/color/image_raw', namespace='front', device='cuda:1')
    assert plan.namespace == 'front'
    assert ('camera_info', '/front/color/camera_info') in plan.remappings
    assert plan.parameters == ['my.yaml', {'device': 'cuda:1'}]
    (plan,) = camera_nodes('lite.yaml', image_topic='/cam/image_rect', camera_info_topic='/calib/cam')
    assert ('camera_info', '/calib/cam') in plan.remappings and ('image', '/cam/image_rect') in plan.remappings


@pytest.mark.parametrize('cameras', ['front, rear', 'front rear', '[front, rear]', "['/front', 'rear']"])
def test_several_cameras_start_one_node_each(cameras):
    plans = camera_nodes('lite.yaml', cameras=cameras, namespace='features', device='cpu')
    assert [plan.namespace for plan in plans] == ['/features/front', '/features/rear']
    for plan, camera in zip(plans, ('front', 'rear')):
        assert plan.remappings == [('image', f'/{camera}/image_raw'),
                                   ('image/compressed', f'/{camera}/image_raw/compressed'),
                                   ('camera_info', f'/{camera}/camera_info')]
        assert plan.parameters == ['lite.yaml', {'device': 'cpu'}]
    (plan,) = camera_nodes('lite.yaml', cameras='left', camera_image='image_mono')
    assert plan.namespace == '/left' and plan.remappings[0] == ('image', '/left/image_mono')


@pytest.mark.parametrize('cameras, needle', [('front, front', 'twice'), ('front, 9rear', 'not a namespace'),
                                             ('[front', 'not a list'), ('{a: 1}', 'not a namespace')])
def test_bad_camera_lists_are_refused(cameras, needle):
    with pytest.raises(ValueError, match=needle):
        camera_nodes('lite.yaml', cameras=cameras)


def test_sibling_camera_info():
    assert sibling_camera_info('/camera/image_raw') == '/camera/camera_info'
    assert sibling_camera_info('/image') == '/camera_info'
    assert sibling_camera_info('image') == 'camera_info'
    assert join('', 'front') == '/front' and join('/robot/', '/front') == '/robot/front' and join('', '') == ''


def test_launch_files_name_installed_files():
    for path in sorted(LAUNCH.glob('*.launch.py')):
        for parts in share_paths(parse(path.name)):
            assert (SHARE.joinpath(*parts)).is_file(), f'{path.name} names share/rfnet_ros/{"/".join(parts)}'


def test_full_launch_is_lite_with_the_full_config():
    """full.launch.py declares params_file with full.yaml as its default before it includes lite.launch.py (the
    first declaration is what --show-args shows), and passes the launch configuration on: a params_file:= of the
    command line replaces full.yaml (forcing full.yaml into the include ignored it)."""
    tree = parse('full.launch.py')
    assert ['launch', 'lite.launch.py'] in share_paths(tree)
    (declared,) = calls(tree, 'DeclareLaunchArgument')
    assert string(declared.args[0]) == 'params_file' and string(keyword(declared, 'description'))
    assert ast.unparse(keyword(declared, 'default_value')) == "PathJoinSubstitution([share, 'config', 'full.yaml'])"
    (include,) = calls(tree, 'IncludeLaunchDescription')
    arguments = keyword(include, 'launch_arguments')
    assert ast.unparse(arguments) == "{'params_file': LaunchConfiguration('params_file')}.items()"
    (description,) = calls(tree, 'LaunchDescription')
    assert [ast.unparse(entity.func) for entity in description.args[0].elts] == \
        ['DeclareLaunchArgument', 'IncludeLaunchDescription']


def test_stereo_launch_starts_the_stereo_node_plan():
    """stereo.launch.py declares params_file (stereo.yaml) and every argument of cameras.STEREO_ARGUMENTS, and
    starts the installed stereo_node with the plan's namespace, remappings and parameters."""
    tree = parse('stereo.launch.py')
    assert ['config', 'stereo.yaml'] in share_paths(tree)
    assert "for name, (default, description) in STEREO_ARGUMENTS.items()" in ast.unparse(tree)
    assert set(inspect.signature(stereo_node).parameters) == {'params_file', *STEREO_ARGUMENTS}
    assert all(description for _, description in STEREO_ARGUMENTS.values())
    (node,) = calls(tree, 'Node')
    executable = string(keyword(node, 'executable'))
    assert executable == 'stereo_node' and (LIB / executable).is_file(), f'{executable} is not installed in {LIB}'
    assert string(keyword(node, 'name')) == 'rfnet_stereo_node'
    for field in ('namespace', 'parameters', 'remappings'):
        assert ast.unparse(keyword(node, field)) == f'plan.{field}'


def test_stereo_plan_remaps_a_realsense_pair():
    plan = stereo_node('stereo.yaml')
    assert plan.namespace == '' and plan.parameters == ['stereo.yaml']
    assert ('left/image_rect', 'left/image_rect') in plan.remappings
    assert ('right/camera_info', 'right/camera_info') in plan.remappings
    plan = stereo_node('stereo.yaml', namespace='vio', left_image='/camera/infra1/image_rect_raw',
                       right_image='/camera/infra2/image_rect_raw', device='cuda')
    assert plan.namespace == 'vio' and plan.parameters == ['stereo.yaml', {'device': 'cuda'}]
    assert plan.remappings == [
        ('left/image_rect', '/camera/infra1/image_rect_raw'),
        ('left/image_rect/compressed', '/camera/infra1/image_rect_raw/compressed'),
        ('left/camera_info', '/camera/infra1/camera_info'),
        ('right/image_rect', '/camera/infra2/image_rect_raw'),
        ('right/image_rect/compressed', '/camera/infra2/image_rect_raw/compressed'),
        ('right/camera_info', '/camera/infra2/camera_info')]
    plan = stereo_node('stereo.yaml', left_image='/zed/zed_node/left/image_rect_color',
                       right_image='/zed/zed_node/right/image_rect_color', right_camera_info='/calib/right')
    assert ('left/camera_info', '/zed/zed_node/left/camera_info') in plan.remappings
    assert ('right/camera_info', '/calib/right') in plan.remappings
