"""``POST /faults`` settings that last: after_pair, unpaired_close_after, chaos; and bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sim.fake_wa_client import post_faults
from waqr.sim.state import World


async def test_defaults_are_whatsapps_own_behaviour(api: httpx.AsyncClient) -> None:
    view = (await api.get("/faults")).json()
    assert view["after_pair"] == "close"
    assert view["unpaired_close_after"] == 210
    assert view["chaos"] is None


@pytest.mark.parametrize("after_pair", ["close", "linger", "close_without_515"])
async def test_after_pair_is_kept_until_cleared(
    api: httpx.AsyncClient, world: World, after_pair: str
) -> None:
    assert (await post_faults(api, {"after_pair": after_pair}))["after_pair"] == after_pair
    assert (await post_faults(api, {"refs": 2}))["after_pair"] == after_pair  # untouched by others
    assert world.faults.after_pair == after_pair
    assert (await post_faults(api, {"clear": True}))["after_pair"] == "close"


async def test_unpaired_close_after_takes_seconds_or_null_for_never(
    api: httpx.AsyncClient, world: World
) -> None:
    assert (await post_faults(api, {"unpaired_close_after": 2.5}))["unpaired_close_after"] == 2.5
    assert (await post_faults(api, {"refs": 3}))["unpaired_close_after"] == 2.5
    assert (await post_faults(api, {"unpaired_close_after": None}))["unpaired_close_after"] is None
    assert world.faults.unpaired_close_after is None
    assert (await post_faults(api, {"clear": True}))["unpaired_close_after"] == 210


async def test_chaos_is_shown_as_set_and_turned_off_by_null_or_clear(
    api: httpx.AsyncClient, world: World
) -> None:
    chaos = {"seed": 42, "delay_max": 0.5, "early_close": 0.1, "drop_acks": 0.25}
    assert (await post_faults(api, {"chaos": chaos}))["chaos"] == chaos
    assert (await api.get("/faults")).json()["chaos"] == chaos
    assert world.faults.chaos is not None and world.faults.chaos.settings.seed == 42
    assert (await post_faults(api, {"chaos": None}))["chaos"] is None
    assert world.faults.chaos is None
    await post_faults(api, {"chaos": {"seed": 1}})
    view = await post_faults(api, {"clear": True})
    assert view["chaos"] is None and world.faults.chaos is None


async def test_chaos_with_only_a_seed_changes_nothing_but_is_on(api: httpx.AsyncClient) -> None:
    view = await post_faults(api, {"chaos": {"seed": 0}})
    assert view["chaos"] == {"seed": 0, "delay_max": 0.0, "early_close": 0.0, "drop_acks": 0.0}


async def test_setting_chaos_again_reseeds_it(api: httpx.AsyncClient, world: World) -> None:
    await post_faults(api, {"chaos": {"seed": 9, "drop_acks": 0.5}})
    first = world.faults.chaos
    assert first is not None
    drawn = [first.drops_ack() for _ in range(20)]
    await post_faults(api, {"chaos": {"seed": 9, "drop_acks": 0.5}})
    second = world.faults.chaos
    assert second is not None and second is not first
    assert [second.drops_ack() for _ in range(20)] == drawn


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"after_pair": "sometimes"}, "after_pair"),
        ({"unpaired_close_after": 0}, "unpaired_close_after"),
        ({"unpaired_close_after": -5}, "unpaired_close_after"),
        ({"unpaired_close_after": "soon"}, "unpaired_close_after"),
        ({"chaos": {}}, "seed"),
        ({"chaos": {"seed": "42"}}, "seed"),
        ({"chaos": {"seed": 4.2}}, "seed"),
        ({"chaos": {"seed": -1}}, "seed"),
        ({"chaos": {"seed": 1, "early_close": 1.5}}, "early_close"),
        ({"chaos": {"seed": 1, "drop_acks": -0.1}}, "drop_acks"),
        ({"chaos": {"seed": 1, "delay_max": 31}}, "delay_max"),
        ({"chaos": {"seed": 1, "delay_max": -1}}, "delay_max"),
        ({"chaos": {"seed": 1, "drop_ack": 0.5}}, "drop_ack"),
        ({"chaos": 5}, "chaos"),
        ({"afterpair": "close"}, "afterpair"),
    ],
)
async def test_bad_settings_are_refused_with_json_naming_the_field(
    api: httpx.AsyncClient, world: World, body: dict[str, Any], field: str
) -> None:
    response = await api.post("/faults", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    locations = [error["loc"] for error in response.json()["detail"]]
    assert any(field in location for location in locations), locations
    assert world.faults.chaos is None and world.faults.after_pair == "close"


async def test_nan_is_not_a_probability(api: httpx.AsyncClient) -> None:
    body = b'{"chaos": {"seed": 1, "early_close": NaN}}'  # Python's json reads NaN; refuse it
    response = await api.post("/faults", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
