"""PIX payments: the gateway protocol, the Mercado Pago client, signatures and reconciliation."""
