"""The payment reconciler process (`python -m reconciler`); its work is in `shop.payments`."""
