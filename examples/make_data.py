"""Regenerate ``data/tickets.txt``, the demo's bundled data: 300 synthetic support tickets.

Deterministic (seeded), so the committed file and a regenerated one are identical.
"""

from __future__ import annotations

import pathlib
import random

PRODUCTS = ["router", "laptop", "printer", "phone", "tablet", "camera", "monitor", "keyboard"]
OPENERS = [
    "My {p} stopped working after the last update.",
    "The new {p} arrived quickly and works great.",
    "I cannot connect the {p} to the network at all.",
    "Thanks for fixing the {p} so fast, excellent support.",
    "The {p} battery drains in two hours, which is terrible.",
    "Setting up the {p} was easy and the manual was clear.",
    "Why does the {p} reboot every few minutes?",
    "The screen of my {p} flickers when it gets warm.",
    "Great value: the {p} does everything I need.",
    "The {p} is slow and the fan is loud.",
]
DETAILS = [
    "I tried restarting it twice.",
    "Support told me to wait for a patch.",
    "Order number {n} if that helps.",
    "It happened again this morning.",
    "My colleague has the same problem.",
    "I would recommend it to friends.",
    "Please send a replacement.",
    "The box was damaged but the device was fine.",
    "",
]


def main() -> None:
    rng = random.Random(7)
    lines = []
    for _ in range(300):
        product = rng.choice(PRODUCTS)
        parts = [rng.choice(OPENERS).format(p=product)]
        for _ in range(rng.randint(0, 2)):
            parts.append(rng.choice(DETAILS).format(n=rng.randint(10000, 99999)))
        lines.append(" ".join(p for p in parts if p))
    out = pathlib.Path(__file__).parent / "data" / "tickets.txt"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
