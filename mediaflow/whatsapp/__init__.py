"""WhatsApp specifics: the media encryption scheme of the WhatsApp CDN."""

from mediaflow.whatsapp.media_crypto import (
    BLOCK_SIZE,
    MAC_LENGTH,
    MEDIA_KEY_LENGTH,
    MIN_ENC_LENGTH,
    EncryptedMedia,
    MediaDecryptor,
    MediaEncryptor,
    MediaKeys,
    decode_b64_field,
    derive_media_keys,
    encrypt_media,
    generate_media_key,
    hkdf_info,
)

__all__ = [
    "BLOCK_SIZE",
    "EncryptedMedia",
    "MAC_LENGTH",
    "MEDIA_KEY_LENGTH",
    "MIN_ENC_LENGTH",
    "MediaDecryptor",
    "MediaEncryptor",
    "MediaKeys",
    "decode_b64_field",
    "derive_media_keys",
    "encrypt_media",
    "generate_media_key",
    "hkdf_info",
]
