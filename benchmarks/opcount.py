"""Bytecodes executed per function, self and inclusive, counted with sys.settrace opcode
events: a load-independent profile (the machine's load changes timings, not these counts).

Tracing makes the code ~30x slower; the counts are exact and repeatable. A recursive function
is counted once, at its outermost call.
"""

from __future__ import annotations

import collections
import sys


class OpCounter:
    def __init__(self) -> None:
        self.self_ops = collections.Counter()
        self.incl = collections.Counter()
        self.calls = collections.Counter()
        self.stack: list[tuple[str, int]] = []  # (function, total at its call)
        self.total = 0

    @staticmethod
    def key(code):
        fn = code.co_filename
        for cut in ("site-packages/", "h3-ingest/", "python3.11/"):
            if cut in fn:
                fn = fn.split(cut, 1)[1]
                break
        return f"{fn}:{code.co_firstlineno}({code.co_qualname})"

    def trace(self, frame, event, arg):
        if event == "call":
            frame.f_trace_opcodes = True
            k = self.key(frame.f_code)
            self.calls[k] += 1
            self.stack.append((k, self.total))
            return self.trace
        if event == "opcode":
            self.total += 1
            if self.stack:
                self.self_ops[self.stack[-1][0]] += 1
            return self.trace
        if event == "return":
            if self.stack:
                k, start = self.stack.pop()
                if not any(k == s[0] for s in self.stack):  # recursion: count outermost only
                    self.incl[k] += self.total - start
            return self.trace
        return self.trace

    def run(self, fn, n):
        sys.settrace(self.trace)
        try:
            for _ in range(n):
                fn()
        finally:
            sys.settrace(None)

    def report(self, n, top=80, out=sys.stdout):
        print(f"total bytecodes per call: {self.total / n:,.0f}", file=out)
        print("--- inclusive", file=out)
        for k, v in self.incl.most_common(top):
            print(f"{v / n:9,.0f} {self.calls[k] / n:6.1f}x  {k}", file=out)
        print("--- self", file=out)
        for k, v in self.self_ops.most_common(top // 2):
            print(f"{v / n:9,.0f} {self.calls[k] / n:6.1f}x  {k}", file=out)
