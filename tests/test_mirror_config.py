"""TD3Config: defaults, round trip, and errors that name the field."""

import pytest

from microrl_host.mirror.config import TD3Config


def test_defaults_round_trip_through_dict():
    config = TD3Config()
    d = config.to_dict()
    assert d["actor_hidden"] == [64, 64] and d["batch_size"] == 100 and d["policy_delay"] == 2
    assert TD3Config.from_dict(d) == config


@pytest.mark.parametrize("field, value", [
    ("actor_hidden", (64, 0)),
    ("critic_hidden", (-1,)),
    ("critic_hidden", ()),
    ("batch_size", 0),
    ("buffer_capacity", -5),
    ("episode_steps", -1),
    ("total_steps", 0),
    ("policy_delay", 0),
    ("eval_episodes", 0),
    ("gamma", 1.5),
    ("gamma", -0.1),
    ("tau", 0.0),
    ("tau", 1.01),
    ("actor_lr", -1e-3),
    ("critic_lr", -1e-3),
    ("policy_noise", -0.2),
    ("noise_clip", -0.5),
    ("exploration_noise", -0.1),
    ("learning_starts", -1),
])
def test_impossible_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TD3Config(**{field: value})


def test_batch_larger_than_buffer_names_both():
    with pytest.raises(ValueError, match="batch_size.*buffer_capacity"):
        TD3Config(batch_size=200, buffer_capacity=100)


def test_from_dict_rejects_unknown_key_by_name():
    with pytest.raises(ValueError, match="learning_rate"):
        TD3Config.from_dict({"learning_rate": 1e-3})
    assert TD3Config.from_dict({"tau": 0.5}).tau == 0.5
