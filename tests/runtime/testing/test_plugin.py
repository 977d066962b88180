"""The pytest fixtures an image builder uses for controller tests."""

from __future__ import annotations

from volumed.runtime import Kind, Resource, Spec, State
from volumed.runtime.controller import Controller, ControllerContext, Input, Output, Runtime
from volumed.runtime.testing import assert_no_resource, assert_resource

REQUESTS = Kind("default", "Requests.test.volumed.dev")
GRANTS = Kind("default", "Grants.test.volumed.dev")


class Ticket(Spec):
    user: str


class Granter(Controller):
    name = "Granter"
    inputs = (Input(REQUESTS.namespace, REQUESTS.type),)
    outputs = (Output(GRANTS.type),)

    async def reconcile(self, ctx: ControllerContext) -> None:
        for request in await ctx.list(REQUESTS, Ticket):
            if request.spec.user != "mallory":
                await ctx.apply(Resource.new(GRANTS.namespace, GRANTS.type, request.id, request.spec))


async def test_fixture_runtime_runs_registered_controllers(
    volumed_runtime: Runtime, volumed_state: State
) -> None:
    assert volumed_runtime.state is volumed_state
    assert volumed_runtime.running
    volumed_runtime.register(Granter())
    await volumed_state.create(Resource.new(REQUESTS.namespace, REQUESTS.type, "r1", Ticket(user="alice")))
    await volumed_state.create(Resource.new(REQUESTS.namespace, REQUESTS.type, "r2", Ticket(user="mallory")))
    await assert_resource(volumed_state, GRANTS.pointer("r1"), lambda r: r.spec.user == "alice")
    await assert_no_resource(volumed_state, GRANTS.pointer("r2"), within=0.05)
    await volumed_state.destroy(REQUESTS.pointer("r1"))
    await assert_no_resource(volumed_state, GRANTS.pointer("r1"))


async def test_each_test_gets_a_fresh_state(volumed_state: State) -> None:
    assert await volumed_state.list(REQUESTS) == []
