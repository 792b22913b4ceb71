"""The check runner the Python driver tests share: named checks that each pass or fail on their
own, a line per check ("ok" or "FAIL" with the reason), and a summary line
"<label>: N passed, N failed" (the form scripts/drivers.sh collects)."""

import sys
import traceback


class CheckFailed(Exception):
    """A check's expectation did not hold."""


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


class Checks:
    """Runs checks and counts them. `describe(e)` words a driver's own exceptions (None for
    others); `after()` runs after every check, passed or failed."""

    def __init__(self, describe=lambda e: None, after=lambda: None, trace_limit=3):
        self.passed = 0
        self.failed = []
        self.describe = describe
        self.after = after
        self.trace_limit = trace_limit

    def check(self, name):
        """Runs the decorated function at once as one named check and records its outcome."""

        def run(fn):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - any exception fails the check, not the run.
                if isinstance(e, CheckFailed):
                    detail = str(e)
                else:
                    detail = self.describe(e) or traceback.format_exc(limit=self.trace_limit)
                self.failed.append(name)
                print(f"FAIL {name}: {detail.strip()}", flush=True)
            else:
                self.passed += 1
                print(f"ok   {name}", flush=True)
            finally:
                self.after()
            return fn

        return run

    def finish(self, label, version_line):
        """Prints the failed checks, the driver's version and the summary; exits 1 on failure."""
        if self.failed:
            print("failed checks:\n  - " + "\n  - ".join(self.failed))
        print(version_line)
        print(f"{label}: {self.passed} passed, {len(self.failed)} failed", flush=True)
        sys.exit(1 if self.failed else 0)
