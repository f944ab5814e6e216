"""The builtin `shakespeare-chat`: short conversations made from the shipped Shakespeare, as JSON lines.

Each verse line (four words or more) that the next line of the text continues becomes a
conversation: a user asks for the line after it (in one of a few phrasings) and the assistant
answers with that line. Every fifth conversation goes on for one more exchange, the line after
that, and every seventh starts with a system message, so that the data exercises multi-turn
conversations and all three roles. Nothing is random: the same text gives the same lines, which
`data.sources` reads as any chat file (format chat).
"""

from __future__ import annotations

import json
from typing import Any

from . import shakespeare

ASKS = (
    "Continue this line: {}",
    'Which line comes after "{}"?',
    "Give the next line of the verse: {}",
)
FOLLOW_UP = "And the line after that?"
SYSTEM = "Answer with one line of Shakespeare."
VERSE_WORDS = 4


def conversations() -> list[dict[str, Any]]:
    lines = shakespeare.text().splitlines()
    verse = [len(line.split()) >= VERSE_WORDS for line in lines]
    made = []
    for i in range(len(lines) - 1):
        if not (verse[i] and verse[i + 1]):
            continue
        k = len(made)
        messages = [{"role": "system", "content": SYSTEM}] if k % 7 == 6 else []
        messages += [
            {"role": "user", "content": ASKS[k % len(ASKS)].format(lines[i].strip())},
            {"role": "assistant", "content": lines[i + 1].strip()},
        ]
        if k % 5 == 4 and i + 2 < len(lines) and verse[i + 2]:
            messages += [
                {"role": "user", "content": FOLLOW_UP},
                {"role": "assistant", "content": lines[i + 2].strip()},
            ]
        made.append({"messages": messages})
    return made


def jsonl() -> bytes:
    return "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in conversations()).encode()
