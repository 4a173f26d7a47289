"""Checks of launch/*.launch.py that need no `launch` package (it is not installed with the ROS wheels).

The files are read with `ast`: the node they start, its executable, name, remapping and parameters, the
arguments they declare, and the installed files they name (executables in install/.../lib/rfnet_ros,
configs in install/.../share/rfnet_ros/config, included launch files in share/rfnet_ros/launch).
"""
import ast

import pytest

from ros_harness import LIB, ROOT, SHARE, require_install

LAUNCH = ROOT / 'launch'
ARGUMENTS = {'params_file', 'image_topic', 'namespace', 'device'}


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


def launch_configuration(node: ast.expr) -> str:
    """'x' for LaunchConfiguration('x')."""
    assert isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'LaunchConfiguration', ast.unparse(node)
    return string(node.args[0])


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


def test_lite_launch_starts_the_node_with_its_arguments():
    tree = parse('lite.launch.py')
    declared = {string(call.args[0]): call for call in calls(tree, 'DeclareLaunchArgument')}
    assert set(declared) == ARGUMENTS
    for name, call in declared.items():
        assert string(keyword(call, 'description')), f'{name} has no description'
    assert string(keyword(declared['image_topic'], 'default_value')) == '/camera/image_raw'
    assert string(keyword(declared['namespace'], 'default_value')) == ''
    assert string(keyword(declared['device'], 'default_value')) == 'auto'
    assert ast.unparse(keyword(declared['params_file'], 'default_value')) == \
        "PathJoinSubstitution([FindPackageShare('rfnet_ros'), 'config', 'lite.yaml'])"

    (node,) = calls(tree, 'Node')
    assert string(keyword(node, 'package')) == 'rfnet_ros'
    assert string(keyword(node, 'name')) == 'rfnet_feature_node'
    assert launch_configuration(keyword(node, 'namespace')) == 'namespace'
    executable = string(keyword(node, 'executable'))
    assert (LIB / executable).is_file(), f'{executable} is not installed in {LIB}'
    parameters = keyword(node, 'parameters').elts
    assert launch_configuration(parameters[0]) == 'params_file'
    assert ast.unparse(parameters[1]) == "{'device': LaunchConfiguration('device')}", 'device overrides the file'
    raw, compressed = keyword(node, 'remappings').elts
    assert string(raw.elts[0]) == 'image' and launch_configuration(raw.elts[1]) == 'image_topic'
    # image_transport compressed: the node's image/compressed reads <image_topic>/compressed.
    assert string(compressed.elts[0]) == 'image/compressed'
    assert ast.unparse(compressed.elts[1]) == "[LaunchConfiguration('image_topic'), '/compressed']"


def test_launch_files_name_installed_files():
    for path in sorted(LAUNCH.glob('*.launch.py')):
        for parts in share_paths(parse(path.name)):
            assert (SHARE.joinpath(*parts)).is_file(), f'{path.name} names share/rfnet_ros/{"/".join(parts)}'


def test_full_launch_is_lite_with_the_full_config():
    tree = parse('full.launch.py')
    assert ['launch', 'lite.launch.py'] in share_paths(tree)
    (include,) = calls(tree, 'IncludeLaunchDescription')
    arguments = keyword(include, 'launch_arguments')
    assert "'params_file': PathJoinSubstitution([share, 'config', 'full.yaml'])" in ast.unparse(arguments)
