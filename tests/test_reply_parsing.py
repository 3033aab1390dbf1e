import pytest

from augment.reply_parsing import parse_json_reply


@pytest.mark.parametrize(
    "reply, expected",
    [
        ('[{"entity": "北京", "type": "地点"}]', [{"entity": "北京", "type": "地点"}]),
        ('好的，结果如下：\n[{"entity": "北京", "type": "地点"}]\n希望有帮助。', [{"entity": "北京", "type": "地点"}]),
        ('```json\n[{"entity": "北京", "type": "地点"},]\n```', [{"entity": "北京", "type": "地点"}]),
        ("[{'entity': '北京', 'type': '地点'}]", [{"entity": "北京", "type": "地点"}]),
        ('[{entity: "北京", type: "地点"}]', [{"entity": "北京", "type": "地点"}]),
        ('{"地点": ["地名", "城市"], "人物": ["人名"],}', {"地点": ["地名", "城市"], "人物": ["人名"]}),
        ("说明 [见下] 然后 [\"中国\", \"人\"]", ["中国", "人"]),
        ('[{"entity": "a]b", "type": "x"}]', [{"entity": "a]b", "type": "x"}]),
        ("[]", []),
    ],
)
def test_lenient_readings(reply, expected):
    assert parse_json_reply(reply) == expected


@pytest.mark.parametrize("reply", [None, "", "no json here", "[unclosed", "{'a': }", "我不知道"])
def test_unreadable_replies_give_none(reply):
    assert parse_json_reply(reply) is None
