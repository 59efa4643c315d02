"""The RAM++ description recipe as data: a plain prompt plus visual-description questions.

RAM++ describes each tag with the plain prompt ``"a photo of a {tag}."`` followed by LLM answers
to five questions about how the thing looks (10 samples each, max 77 tokens, temperature 0.99),
51 descriptions per tag in all.
"""
from __future__ import annotations

#: Questions put to the LLM; ``{tag}`` is replaced by the tag name.
DESCRIPTION_PROMPTS: tuple[str, ...] = (
    "Describe concisely what a(n) {tag} looks like:",
    "How can you identify a(n) {tag} concisely?",
    "What does a(n) {tag} look like concisely?",
    "What are the identifying characteristics of a(n) {tag}:",
    "Please provide a concise description of the visual characteristics of {tag}:",
)
SAMPLES_PER_PROMPT = 10
MAX_TOKENS = 77
TEMPERATURE = 0.99


def plain_prompt(tag: str) -> str:
    """The first description of every tag, as in the official files: ``"a photo of a {tag}."``."""
    return f"a photo of a {tag.lower()}."
