"""Test extension that declares a privileged intent (members)."""

INTENTS = ("members",)


def setup(bot) -> None:  # type: ignore[no-untyped-def]
    pass
