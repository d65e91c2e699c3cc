"""The wire's topics: built, parsed back, matched against filters, and the ACL's grants."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from epic.shared.wire import (
    FROM_EDGES,
    ID_PATTERN,
    ID_REGEX,
    KINDS,
    Address,
    EnvelopeError,
    Topic,
    TopicError,
    Wildcard,
    centre_access,
    check_id,
    device_access,
    envelope_topic,
    heartbeat_topic,
    latent_topic,
    make_topic,
    map_topic,
    parse_topic,
    status_topic,
    subtree,
    topic_filter,
)

ids = st.from_regex(ID_PATTERN, fullmatch=True)


def test_every_kind_is_built_as_the_layout_says() -> None:
    assert str(latent_topic("d", "s1", "dev-1")) == "epic/d/latent/s1/dev-1"
    assert str(envelope_topic("d", "raw", "s1", "dev-1")) == "epic/d/raw/s1/dev-1"
    assert str(status_topic("d", "dev-1")) == "epic/d/status/dev-1"
    assert str(heartbeat_topic("d", "dev-1")) == "epic/d/heartbeat/dev-1"
    assert str(map_topic("d", "s1")) == "epic/d/map/s1"
    assert set(KINDS) == {*FROM_EDGES, "map"}


@given(ids, ids, ids, st.sampled_from(sorted(KINDS)))
def test_build_and_parse_round_trip(deployment: str, sample: str, device: str, kind: str) -> None:
    names = KINDS[kind]
    address = Address(
        deployment,
        kind,
        sample if "sample" in names else None,
        device if "device" in names else None,
    )
    topic = address.topic
    assert parse_topic(topic) == address == parse_topic(str(topic))
    assert topic.matches(topic_filter(deployment, kind)) and topic.matches(subtree(deployment))


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "epic",
        "epic/d/latent",  # no id at all
        "other/d/map/s1",  # not our root
        "epic/d/latent/s1",  # a latent names its sample and its device
        "epic/d/status/s1/dev-1",  # a status names only its device
        "epic/d/foo/s1",  # no such kind
        "epic/d/map/s 1",  # not an id
        "epic/d/status/",  # an empty id
        "epic/d/latent/+/dev-1",  # a filter, not a topic
        "epic/bad id/map/s1",
    ],
)
def test_malformed_topics_are_refused_with_a_clear_error(topic: str) -> None:
    with pytest.raises(TopicError, match=re.escape(repr(topic))):
        parse_topic(topic)


def test_a_refused_topic_still_says_what_it_claims() -> None:
    with pytest.raises(TopicError) as info:
        parse_topic("epic/d/latent/s1")
    assert (info.value.deployment, info.value.sender) == ("d", "s1")
    with pytest.raises(TopicError) as info:
        parse_topic("epic/d/latent")
    assert (info.value.deployment, info.value.sender) == (None, None)


def test_the_layout_alone_leaves_ids_to_the_receiver() -> None:
    where = parse_topic("epic/d/latent/s 1/dev+1", check_ids=False)
    assert (where.sample, where.device) == ("s 1", "dev+1")
    with pytest.raises(TopicError):
        parse_topic("epic/d/latent/s1", check_ids=False)


@pytest.mark.parametrize(
    ("kind", "ids"),
    [
        ("nope", {"sample": "s1"}),
        ("latent", {"sample": "s1"}),  # the device is missing
        ("status", {"sample": "s1", "device": "dev-1"}),  # a status has no sample
        ("map", {"sample": "s/1"}),
        ("map", {"sample": "x" * 65}),
    ],
)
def test_building_a_topic_checks_kind_and_ids(kind: str, ids: dict[str, str]) -> None:
    with pytest.raises(TopicError):
        make_topic("d", kind, **ids)


def test_building_a_topic_checks_the_deployment() -> None:
    with pytest.raises(TopicError, match="deployment 'bad deployment'"):
        status_topic("bad deployment", "dev-1")


@pytest.mark.parametrize("value", ["", "a/#/b", "a/b#", "a/+b", "#/a"])
def test_malformed_filters_are_refused(value: str) -> None:
    with pytest.raises(TopicError):
        Wildcard(value)


def test_a_topic_name_holds_no_wildcard() -> None:
    assert str(Wildcard("a/+/#")) == "a/+/#"
    for value in ("a/+", "a/#", "#"):
        with pytest.raises(TopicError):
            Topic(value)


def test_matches_with_plus_and_hash() -> None:
    topic = Topic("epic/d/latent/s1/dev-1")
    assert topic.matches("epic/d/latent/+/+") and topic.matches("epic/d/latent/+/dev-1")
    assert topic.matches("epic/d/#") and topic.matches("#") and topic.matches(topic)
    assert not topic.matches("epic/d/latent/+") and not topic.matches("epic/d/latent/+/dev-2")
    assert not topic.matches("epic/d/status/#") and not topic.matches("epic/+/latent/+/+/+")
    assert Topic("a").matches("a/#")  # `a/#` matches its parent too (MQTT 3.1.1, 4.7.1.2)
    assert Topic("a/b").matches(Wildcard("a/+"))


def test_a_filter_matches_only_a_filter_covering_it() -> None:
    assert Wildcard("a/+/c").matches("a/+/c") and Wildcard("a/b/c").matches("a/+/#")
    assert Wildcard("a/+").matches("a/#") and Wildcard("a/#").matches("#")
    assert not Wildcard("a/#").matches("a/+") and not Wildcard("+/b").matches("a/b")
    assert not Wildcard("a/+").matches("a/b")


def test_subscription_filters() -> None:
    assert [str(topic_filter("d", kind)) for kind in FROM_EDGES] == [
        "epic/d/latent/+/+",
        "epic/d/raw/+/+",
        "epic/d/status/+",
        "epic/d/heartbeat/+",
    ]
    assert str(topic_filter("d", "map")) == "epic/d/map/+"
    assert str(topic_filter("d", "latent", device="dev-1")) == "epic/d/latent/+/dev-1"
    assert str(subtree("d")) == "epic/d/#" and str(subtree("d", "map")) == "epic/d/map/#"
    with pytest.raises(TopicError):
        topic_filter("d", "status", sample="s1")


def test_acl_lines() -> None:
    assert centre_access("d").acl_lines() == ["topic read epic/d/#", "topic write epic/d/map/#"]
    assert device_access("d", "dev-1").acl_lines() == [
        "topic write epic/d/latent/+/dev-1",
        "topic write epic/d/raw/+/dev-1",
        "topic write epic/d/status/dev-1",
        "topic write epic/d/heartbeat/dev-1",
    ]


def test_each_party_may_write_its_own_topics_and_no_one_elses() -> None:
    mine, theirs = device_access("d", "dev-1"), device_access("d", "dev-2")
    own = [
        latent_topic("d", "s1", "dev-1"),
        envelope_topic("d", "raw", "s1", "dev-1"),
        status_topic("d", "dev-1"),
        heartbeat_topic("d", "dev-1"),
    ]
    for topic in own:
        assert any(topic.matches(rule) for rule in mine.write)
        assert not any(topic.matches(rule) for rule in theirs.write)
        assert any(topic.matches(rule) for rule in centre_access("d").read)
    assert not mine.read and not any(map_topic("d", "s1").matches(r) for r in mine.write)
    centre = centre_access("d")
    assert any(map_topic("d", "s1").matches(rule) for rule in centre.write)
    assert not any(own[0].matches(rule) for rule in centre.write)
    assert not any(latent_topic("e", "s1", "dev-1").matches(r) for r in centre.read)


def test_one_id_pattern_and_one_check() -> None:
    assert re.search(ID_REGEX, "dev-1") and not re.search(ID_REGEX, "a/dev-1")
    assert check_id("dev-1", "device id") == "dev-1"
    with pytest.raises(ValueError, match=r"device id 'a b' is not \[A-Za-z0-9_.-\]\{1,64\}"):
        check_id("a b", "device id")
    with pytest.raises(EnvelopeError) as info:
        check_id("x" * 65, "sample id", lambda message: EnvelopeError("bad-id", message))
    assert info.value.reason == "bad-id"
    with pytest.raises(ValueError):
        check_id(None, "device id")  # type: ignore[arg-type]
