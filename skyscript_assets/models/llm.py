"""Text LLMs. For now: the JSON repairer the cleaning stage calls for replies it cannot
read locally (the paper used GPT-4o as a JSON validator), through the same
OpenAI-compatible client as the `openai` MLLM backend.

    repairer = LlmJsonRepairer.from_server("https://api.openai.com/v1", "gpt-4o")
    clean_raw_output(text, items, repairer=repairer)
"""

from __future__ import annotations

from skyscript_assets.models.mllm.openai_chat import ChatError, OpenAIChatClient
from skyscript_assets.prompts import JSON_REPAIR, PromptTemplate, load_prompt

# Longer inputs are not worth a repair call: they are mostly a model that rambled.
MAX_REPAIR_CHARS = 32_000


class LlmJsonRepairer:
    """Callable (broken_text, problem) -> corrected text; raises ChatError (one redacted line) when
    the call fails, at the latest at the client's overall deadline (`deadline_s`)."""

    def __init__(self, client: OpenAIChatClient, prompt: PromptTemplate | None = None, max_tokens: int = 4096):
        self.client = client
        self.prompt = prompt or load_prompt(JSON_REPAIR)
        self.max_tokens = max_tokens
        self.model_id = f"openai:{client.model}"

    @classmethod
    def from_server(cls, base_url: str, model: str, **client_config) -> LlmJsonRepairer:
        return cls(OpenAIChatClient(base_url, model, **client_config))

    def __call__(self, broken_text: str, problem: str) -> str:
        if len(broken_text) > MAX_REPAIR_CHARS:
            raise ValueError(f"{len(broken_text)} characters is too long for a repair call")
        message = self.prompt.render(problem=problem, text=broken_text)
        try:
            return self.client.complete([{"role": "user", "content": message}], max_tokens=self.max_tokens)
        except ChatError:
            raise  # one line, redacted, bounded by the client's deadline
        except Exception as exc:  # anything else a server provoked: its text is redacted before it becomes a loss
            raise ChatError(self.client.redact(f"{type(exc).__name__}: {exc}")) from None
