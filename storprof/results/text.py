"""Text from results files, made safe to print on a terminal.

A results directory is input (it may come from another user or another machine), and its strings
(a driver's reason, spec and job names, fio's messages, an error) reach the terminal. An escape
sequence in one could set the window title, write to the clipboard (OSC 52) or rewrite what was
printed before. So every control character but newline and tab is dropped: C0, DEL, C1 (which
some terminals read as ESC [ and the like), whatever follows them being plain text then.
"""

from __future__ import annotations

import re

# C0 but \t and \n, DEL, C1; and the Unicode bidi overrides that reorder what is shown.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """`text` as a string without terminal control characters."""
    return CONTROL.sub("", str(text))


def one_line(text: object) -> str:
    """`text` printable and on one line (an error message that quotes a results file)."""
    return " ".join(printable(text).split("\n")).replace("\t", " ")
