"""rfnet_ros.sizes: one reader of "AxB" sizes, in the order each command documents."""
import pytest

from rfnet_ros.cli import track
from rfnet_ros.evaluation import evaluate
from rfnet_ros.sizes import parse_size


def test_parse_size():
    assert parse_size('320x240') == (320, 240)
    for bad in ('320', '0x10', 'axb'):
        with pytest.raises(Exception, match='WIDTHxHEIGHT|positive'):
            parse_size(bad)


def test_height_first_order():
    assert parse_size('480x640', 'HxW') == (480, 640)
    for bad in ('480', '480x0', 'hxw'):
        with pytest.raises(Exception, match='HEIGHTxWIDTH|positive'):
            parse_size(bad, 'HxW')


def test_each_command_reads_its_documented_order():
    # rfnet-eval --model-size HxW: (model_height, model_width); the frame tools' --resize WxH: (width, height).
    assert evaluate.build_parser().parse_args(['--model-size', '480x640']).model_size == (480, 640)
    assert track.build_parser().parse_args(['video.avi', '--resize', '640x480']).resize == (640, 480)
    with pytest.raises(SystemExit):
        evaluate.build_parser().parse_args(['--model-size', '480'])
