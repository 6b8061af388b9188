//! One way to hash a file on the executor: SHA-256 read in chunks, yielding between them, so a
//! large file never holds up the other tasks (used by the command module's executable pinning
//! and the response module's quarantine).

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// Bytes hashed between two yields.
const HASH_CHUNK: usize = 64 * 1024;

/// Hex SHA-256 of a file, read in chunks with a yield between them.
pub async fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; HASH_CHUNK];
    loop {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        hasher.update(&chunk[..n]);
        futures_lite::future::yield_now().await;
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_file_spanning_chunks_hashes_like_its_bytes() {
        use sha2::{Digest, Sha256};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let hashed = smol::block_on(super::sha256_file(&path)).unwrap();
        assert_eq!(hashed, hex::encode(Sha256::digest(&bytes)));
    }
}
