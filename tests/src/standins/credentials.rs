//! Throw-away signing keys for the stand-ins: an APNs P-256 key (the `.p8` file Apple hands
//! out) and an RSA key for an FCM service account, generated at run time so that no key is
//! ever checked in.

use anyhow::Context as _;
use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rand_core::OsRng;

/// A key pair in the PEM forms the providers use.
#[derive(Clone)]
pub struct KeyPair {
    /// Private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_pem: String,
    /// Public key, SPKI PEM (`-----BEGIN PUBLIC KEY-----`), for the stand-in to verify with.
    pub public_pem: String,
}

impl std::fmt::Debug for KeyPair {
    // Written by hand so that the private key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_pem", &self.public_pem)
            .finish_non_exhaustive()
    }
}

/// A fresh P-256 key like an APNs `.p8` auth key.
pub fn apns_key() -> anyhow::Result<KeyPair> {
    let secret = p256::SecretKey::random(&mut OsRng);
    let private_pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .context("encoding the APNs key as PKCS#8 PEM")?
        .to_string();
    let public_pem = secret
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .context("encoding the APNs public key as SPKI PEM")?;
    Ok(KeyPair {
        private_pem,
        public_pem,
    })
}

/// A fresh 2048-bit RSA key like the one in a Google service-account JSON file.
pub fn service_account_key() -> anyhow::Result<KeyPair> {
    use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
    let private = rsa::RsaPrivateKey::new(&mut OsRng, 2048).context("generating an RSA key")?;
    let private_pem = private
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .context("encoding the RSA key as PKCS#8 PEM")?
        .to_string();
    let public_pem = private
        .to_public_key()
        .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
        .context("encoding the RSA public key as SPKI PEM")?;
    Ok(KeyPair {
        private_pem,
        public_pem,
    })
}
