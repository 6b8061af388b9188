//! The link's cipher suite: TLS 1.3 `TLS_AES_128_GCM_SHA256`, embedded-tls's own
//! `Aes128GcmSha256` but for the AEAD, which comes from `gatewatch-aead`: the same AES-GCM code
//! instantiated in a crate built for speed, not in the agent's size-optimised crate (see that
//! crate's documentation). Everything else (code point, key and nonce sizes, hash) is taken from
//! embedded-tls's suite, so the two cannot drift apart.

use embedded_tls::{Aes128GcmSha256, TlsCipherSuite};

/// `TLS_AES_128_GCM_SHA256` with [`gatewatch_aead::Aes128Gcm`].
pub struct LinkSuite;

impl TlsCipherSuite for LinkSuite {
    const CODE_POINT: u16 = <Aes128GcmSha256 as TlsCipherSuite>::CODE_POINT;
    type Cipher = gatewatch_aead::Aes128Gcm;
    type KeyLen = <Aes128GcmSha256 as TlsCipherSuite>::KeyLen;
    type IvLen = <Aes128GcmSha256 as TlsCipherSuite>::IvLen;
    type Hash = <Aes128GcmSha256 as TlsCipherSuite>::Hash;
    type LabelBufferSize = <Aes128GcmSha256 as TlsCipherSuite>::LabelBufferSize;
}
