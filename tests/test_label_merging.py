import numpy as np
import pytest

from augment.label_merging import merge_synonym_types, type_geometry

POINTS = {
    "地点": [(1, 0), (-1, 0), (0, 1), (0, -1), (0.5, 0.5), (-0.5, -0.5)],  # centre (0, 0), radius (4 + 0.707) / 5
    "城市": [(0.8, 0), (1.2, 0), (1, 0)],  # centre 1.0 from 地点's: within 1.5 * radius
    "星球": [(5, 5), (5, 6)],  # far away: stays its own label
    "人物": [(9, 9)],  # in no group
    "公司": [(10, 0), (12, 0)],  # ties on samples with 机构; larger radius -> reference
    "机构": [(10, 0.1), (10.2, 0.1)],
}


def constructed(points: dict, names: dict | None = None):
    """Pairs and an embedder over them; a type name embeds as `names[type]`, by default all alike."""
    pairs, table = [], {}
    for kind, vectors in points.items():
        table[kind] = np.array((names or {}).get(kind, (1.0, 1.0)), dtype=float)
        for index, vector in enumerate(vectors):
            entity = f"{kind}{index}"
            pairs.append((entity, kind))
            table[f"{entity} is {kind}"] = np.array(vector, dtype=float)
    return pairs, lambda texts: np.stack([table[text] for text in texts])


def test_type_geometry_follows_eqs_6_and_7():
    geometry = type_geometry(np.array(POINTS["地点"], dtype=float), top_p=5)
    assert np.allclose(geometry.centre, [0, 0])
    assert geometry.radius == pytest.approx((4 + np.sqrt(0.5)) / 5)
    assert geometry.samples == 6


def test_groups_merge_by_geometry_and_far_types_stay_apart():
    pairs, embed = constructed(POINTS)
    groups = {"地名": ["地点", "城市", "星球"], "组织": ["机构", "公司"], "幻觉": ["不存在的类型"]}
    mapping, decisions = merge_synonym_types(pairs, groups, embed, epsilon=1.5, top_p=5)
    assert mapping == {"地点": "地名", "城市": "地名", "星球": "星球", "人物": "人物", "公司": "组织", "机构": "组织"}
    by_type = {decision.type: decision for decision in decisions}
    assert set(by_type) == {"地点", "城市", "星球", "公司", "机构"}
    assert by_type["城市"].reference == "地点" and by_type["城市"].distance == pytest.approx(1.0)
    assert by_type["星球"].merged is False and by_type["星球"].distance > by_type["星球"].threshold
    assert by_type["机构"].reference == "公司"  # equal sample counts: the larger radius wins


def test_a_smaller_epsilon_keeps_the_close_type_apart():
    pairs, embed = constructed(POINTS)
    mapping, _ = merge_synonym_types(pairs, {"地名": ["地点", "城市"]}, embed, epsilon=0.5, top_p=5)
    assert mapping["地点"] == "地名" and mapping["城市"] == "城市"


def test_a_type_in_two_groups_is_decided_once():
    pairs, embed = constructed(POINTS)
    mapping, decisions = merge_synonym_types(pairs, {"地名": ["地点", "城市"], "城镇": ["城市"]}, embed)
    assert mapping["城市"] == "地名" and [decision.type for decision in decisions].count("城市") == 1


def test_a_type_named_unlike_its_reference_stays_apart_however_close_its_samples():
    pairs, embed = constructed(POINTS, names={"地点": (1.0, 0.0), "城市": (0.6, 0.8)})  # cosine 0.6
    mapping, decisions = merge_synonym_types(pairs, {"地名": ["地点", "城市"]}, embed, epsilon=1.5, min_name_similarity=0.93)
    city = next(decision for decision in decisions if decision.type == "城市")
    assert city.distance <= city.threshold and city.name_similarity == pytest.approx(0.6)
    assert mapping["城市"] == "城市" and mapping["地点"] == "地名"
    mapping, _ = merge_synonym_types(pairs, {"地名": ["地点", "城市"]}, embed, epsilon=1.5, min_name_similarity=-1)
    assert mapping["城市"] == "地名"  # -1: the paper's geometric test alone
