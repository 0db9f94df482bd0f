"""WhatsApp specifics: the media encryption scheme of the WhatsApp CDN."""

from mediaflow.whatsapp.keys import (
    MEDIA_KEY_LENGTH,
    MediaKeys,
    decode_b64_field,
    derive_media_keys,
    hkdf_info,
)
from mediaflow.whatsapp.media_crypto import BLOCK_SIZE, MAC_LENGTH, MIN_ENC_LENGTH, MediaDecryptor

__all__ = [
    "BLOCK_SIZE",
    "MAC_LENGTH",
    "MEDIA_KEY_LENGTH",
    "MIN_ENC_LENGTH",
    "MediaDecryptor",
    "MediaKeys",
    "decode_b64_field",
    "derive_media_keys",
    "hkdf_info",
]
