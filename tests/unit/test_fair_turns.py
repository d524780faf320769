"""The bcrypt threads' turns go round-robin between tenants (no I/O: the turns alone)."""

from __future__ import annotations

import asyncio

from tenantry.auth.passwords import FairTurns


async def test_a_storm_in_one_tenant_does_not_delay_another_beyond_one_turn_each() -> None:
    turns = FairTurns(1)
    order: list[str] = []
    release = asyncio.Event()

    async def hash_for(tenant: str, n: int) -> None:
        async with turns.turn(tenant):
            order.append(f"{tenant}{n}")
            await release.wait()

    first = asyncio.create_task(hash_for("a", 0))  # takes the only turn
    await asyncio.sleep(0)
    storm = [asyncio.create_task(hash_for("a", n)) for n in range(1, 6)]
    await asyncio.sleep(0)
    others = [asyncio.create_task(hash_for("b", 1)), asyncio.create_task(hash_for("c", 1))]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *storm, *others)
    assert order == ["a0", "a1", "b1", "c1", "a2", "a3", "a4", "a5"]


async def test_a_caller_that_leaves_while_waiting_gives_up_its_place() -> None:
    turns = FairTurns(1)
    release = asyncio.Event()
    served: list[str] = []

    async def hash_for(tenant: str) -> None:
        async with turns.turn(tenant):
            served.append(tenant)
            await release.wait()

    holder = asyncio.create_task(hash_for("a"))
    await asyncio.sleep(0)
    gone = asyncio.create_task(hash_for("b"))
    waiting = asyncio.create_task(hash_for("c"))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(holder, waiting)
    assert served == ["a", "c"]
    # Every turn came back: the next caller goes at once.
    async with asyncio.timeout(1), turns.turn("d"):
        pass
