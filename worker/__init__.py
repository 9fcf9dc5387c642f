"""One disnake process per tenant bot (`python -m worker --instance ID`)."""
