"""Commerce rules with no Discord or HTTP in them."""
