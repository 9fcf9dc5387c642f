"""Helpers shared by test modules (settings, factories, constants); fixtures stay in the
`conftest.py` files, which import what they use from here."""
