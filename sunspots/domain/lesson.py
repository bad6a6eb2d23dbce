"""The lesson's toy classification data: six 6-step sequences, their classes, and its example.

Training fits the classifier on these, and the tests and the demo check it still answers them.
"""

from __future__ import annotations

SEQUENCES: list[list[int]] = [
    [0, 1, 1, 0, 0, 0],
    [0, 0, 0, 2, 2, 0],
    [0, 0, 0, 0, 3, 3],
    [0, 2, 2, 0, 0, 0],
    [0, 0, 3, 3, 0, 0],
    [0, 0, 0, 0, 1, 1],
]
CLASSES: list[int] = [1, 2, 3, 2, 3, 1]
# The lesson asks about this sequence, in its nested one-feature-per-step form; the answer is 1.
EXAMPLE: list[list[int]] = [[0], [0], [0], [0], [0], [1]]
EXAMPLE_CLASS = 1
