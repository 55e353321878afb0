"""Providers: one module per wire protocol, found by ``provider.kind`` in
``latlab.providers.registry.REGISTRY``.

Each ``ProviderKind`` knows how to build a ``latlab.runner.core.protocol.Provider`` from the
provider's config section and a resolved ``Endpoint``, how to find its credentials
(preflight, before any request), which model id key it reads from the model group,
and whether it can apply a guardrail. Unknown kinds fail listing the known ones.

    anthropic   providers/anthropic.py   Messages API over httpx (also provider=emulator)
    bedrock     providers/bedrock.py     AWS Bedrock Runtime: InvokeModel[WithResponseStream],
                                         Converse[Stream]; SigV4; guardrails
    openai_compat providers/openai_compat.py  any OpenAI-compatible /v1/chat/completions
    vertex      providers/vertex.py      Claude on Vertex AI: rawPredict / streamRawPredict
"""
