"""The OpenAI Agents SDK (PyPI `openai-agents`) pointed at weir: one full agent turn with a function
tool (the model calls the tool, the SDK runs it and sends the result back, the model answers)
against providers of other formats and against the Responses provider, plain and streamed."""

from __future__ import annotations

import asyncio

import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

from weir_clients import DEMO_KEY, DEMO_MODELS, TIMEOUT

# Traces go to OpenAI's servers by default; a test talks to weir only.
set_tracing_disabled(True)

MODELS = ["mock-anthropic", "mock-gemini", "mock-responses", "mock-bedrock", "mock-openai"]
# A compact one-key object: Gemini carries a tool's result as an object, and the mock echoes it.
RESULT = '{"city":"Zürich"}'
calls: list[str] = []


@function_tool
def lookup_city(query: str) -> str:
    """Looks a city up in the test's gazetteer."""
    calls.append(query)
    return RESULT


def agent_for(url: str, model: str) -> Agent:
    client = AsyncOpenAI(base_url=url + "/v1", api_key=DEMO_KEY, max_retries=0, timeout=TIMEOUT)
    return Agent(name="weather", instructions="Answer with the tool's help.", tools=[lookup_city],
                 model=OpenAIResponsesModel(model=model, openai_client=client))


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
@pytest.mark.parametrize("model", MODELS)
def test_one_agent_turn_with_a_function_tool(envoy, mock, model, stream):
    calls.clear()
    agent = agent_for(envoy.url, model)
    ask = "please use the tool for Zürich"

    async def run() -> str:
        if not stream:
            return (await Runner.run(agent, ask)).final_output
        result = Runner.run_streamed(agent, ask)
        kinds = [e.type async for e in result.stream_events()]
        assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
        return result.final_output

    # The mock calls the first tool when asked to use one, then echoes the tool's result.
    assert asyncio.run(run()) == "echo: " + RESULT
    assert calls == [ask]
    provider = DEMO_MODELS[model][0]
    recs = mock.requests()
    assert [(r["provider"], r["status"], r["valid"]) for r in recs] == [(provider, 200, True)] * 2, recs
