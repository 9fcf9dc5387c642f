"""Attacks from issue 13 (trust), each reproduced: `pytest -k trust` selects them."""
