"""The PIX QR image, drawn locally from the copia-e-cola (BR Code) string."""

from __future__ import annotations

import io

import segno


def pix_png(copia_e_cola: str, scale: int = 6) -> bytes:
    """PNG bytes of the QR code for `copia_e_cola` (error correction M, quiet zone 2)."""
    if not copia_e_cola:
        raise ValueError("empty PIX code")
    qr = segno.make(copia_e_cola, error="m", micro=False)
    out = io.BytesIO()
    qr.save(out, kind="png", scale=scale, border=2)
    return out.getvalue()
