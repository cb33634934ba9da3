"""The closed set of verdicts and the exit status each one maps to.

Only INFRA is ever retried: every other verdict is a property of the kernel or
of the input, and retrying would hide it.
"""
import enum


class Verdict(str, enum.Enum):
    PASS = "PASS"
    MILESTONE_MISSING = "MILESTONE_MISSING"
    TIMEOUT = "TIMEOUT"
    HANG = "HANG"
    PANIC = "PANIC"
    DEBUGGER = "DEBUGGER"
    CRASH = "CRASH"
    BAD_INPUT = "BAD_INPUT"
    BUILD_FAILED = "BUILD_FAILED"
    INFRA = "INFRA"

    @property
    def exit_status(self):
        return EXIT_STATUS[self]

    @property
    def retryable(self):
        return self is Verdict.INFRA


EXIT_PASS = 0
EXIT_GUEST_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INFRA = 3
EXIT_BUILD_FAILED = 4

EXIT_STATUS = {
    Verdict.PASS: EXIT_PASS,
    Verdict.MILESTONE_MISSING: EXIT_GUEST_FAILED,
    Verdict.TIMEOUT: EXIT_GUEST_FAILED,
    Verdict.HANG: EXIT_GUEST_FAILED,
    Verdict.PANIC: EXIT_GUEST_FAILED,
    Verdict.DEBUGGER: EXIT_GUEST_FAILED,
    Verdict.CRASH: EXIT_GUEST_FAILED,
    Verdict.BAD_INPUT: EXIT_BAD_INPUT,
    Verdict.BUILD_FAILED: EXIT_BUILD_FAILED,
    Verdict.INFRA: EXIT_INFRA,
}


class HarnessError(Exception):
    """A failure that ends a run before the guest could be judged.

    `verdict` is BAD_INPUT, BUILD_FAILED or INFRA; the message is one line that
    names the input or the component and says what to do.
    """

    verdict = Verdict.INFRA

    def __init__(self, message, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class BadInput(HarnessError):
    verdict = Verdict.BAD_INPUT


class BuildFailed(HarnessError):
    verdict = Verdict.BUILD_FAILED


class InfraError(HarnessError):
    verdict = Verdict.INFRA
