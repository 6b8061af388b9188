//! AES-128-GCM for the agent's TLS link (embedded-tls), as a concrete type.
//!
//! embedded-tls is generic over its cipher, so `aes_gcm::Aes128Gcm`'s generic code (the CTR
//! keystream, GHASH over `GenericArray` blocks) used to be instantiated in the agent crate and
//! compiled at the agent's `opt-level = "z"`: without inlining, a third of the agent's CPU when it
//! ships logs went there. This crate instantiates it once, behind non-generic functions, and the
//! release profile builds it at opt-level 3 (`[profile.release.package.gatewatch-aead]`), so only
//! these few functions are built for speed. Same algorithm, same crate, same bytes on the wire.

#![no_std]
#![forbid(unsafe_code)]

pub use aes_gcm::aead;

use aes_gcm::aead::consts::{U0, U12, U16};
use aes_gcm::aead::{AeadCore, AeadInPlace, Error, Key, KeyInit, KeySizeUser, Nonce, Tag};

/// AES-128-GCM with a 96-bit nonce and a 128-bit tag (TLS 1.3 `TLS_AES_128_GCM_SHA256`).
#[derive(Clone)]
pub struct Aes128Gcm(aes_gcm::Aes128Gcm);

impl KeySizeUser for Aes128Gcm {
    type KeySize = U16;
}

impl KeyInit for Aes128Gcm {
    fn new(key: &Key<Self>) -> Self {
        Aes128Gcm(aes_gcm::Aes128Gcm::new(key))
    }
}

impl AeadCore for Aes128Gcm {
    type NonceSize = U12;
    type TagSize = U16;
    type CiphertextOverhead = U0;
}

impl AeadInPlace for Aes128Gcm {
    #[inline(never)]
    fn encrypt_in_place_detached(
        &self,
        nonce: &Nonce<Self>,
        associated_data: &[u8],
        buffer: &mut [u8],
    ) -> Result<Tag<Self>, Error> {
        self.0
            .encrypt_in_place_detached(nonce, associated_data, buffer)
    }

    #[inline(never)]
    fn decrypt_in_place_detached(
        &self,
        nonce: &Nonce<Self>,
        associated_data: &[u8],
        buffer: &mut [u8],
        tag: &Tag<Self>,
    ) -> Result<(), Error> {
        self.0
            .decrypt_in_place_detached(nonce, associated_data, buffer, tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NIST SP 800-38D / McGrew–Viega GCM test case 4 (AES-128, 96-bit IV, with AAD).
    #[test]
    fn matches_the_gcm_specification_test_vector() {
        let hex = |s: &str| -> [u8; 64] {
            let mut out = [0u8; 64];
            for (i, pair) in s.as_bytes().chunks(2).enumerate() {
                let digit = |c: u8| (c as char).to_digit(16).unwrap() as u8;
                out[i] = digit(pair[0]) << 4 | digit(pair[1]);
            }
            out
        };
        let key = hex("feffe9928665731c6d6a8f9467308308");
        let iv = hex("cafebabefacedbaddecaf888");
        let plain = hex(concat!(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72",
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
        ));
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let cipher_text = hex(concat!(
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e",
            "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091"
        ));
        let tag = hex("5bc94fbc3221a5db94fae95ae7121a47");
        let cipher = Aes128Gcm::new(Key::<Aes128Gcm>::from_slice(&key[..16]));
        let nonce = Nonce::<Aes128Gcm>::from_slice(&iv[..12]);
        let mut buffer = plain;
        let got = cipher
            .encrypt_in_place_detached(nonce, &aad[..20], &mut buffer[..60])
            .unwrap();
        assert_eq!(&buffer[..60], &cipher_text[..60]);
        assert_eq!(got.as_slice(), &tag[..16]);
        cipher
            .decrypt_in_place_detached(nonce, &aad[..20], &mut buffer[..60], &got)
            .unwrap();
        assert_eq!(&buffer[..60], &plain[..60]);
        buffer[0] ^= 1;
        assert!(cipher
            .decrypt_in_place_detached(nonce, &aad[..20], &mut buffer[..60], &got)
            .is_err());
    }
}
