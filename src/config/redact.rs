//! Debug output of [`EnrollmentConfig`] that never shows the enrollment password, so that logging
//! a whole [`super::Config`] (`{:?}`) cannot leak it.

use super::EnrollmentConfig;
use std::fmt;

impl fmt::Debug for EnrollmentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let EnrollmentConfig {
            enabled,
            server,
            port,
            password,
            password_file,
            ca,
            certificate,
            key,
            reenroll_when_refused,
        } = self;
        f.debug_struct("EnrollmentConfig")
            .field("enabled", enabled)
            .field("server", server)
            .field("port", port)
            .field("password", &password.as_ref().map(|_| "<redacted>"))
            .field("password_file", password_file)
            .field("ca", ca)
            .field("certificate", certificate)
            .field("key", key)
            .field("reenroll_when_refused", reenroll_when_refused)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn debug_output_of_the_config_hides_the_password() {
        let mut config = Config::default();
        config.enrollment.password = Some("s3cr3t-enrollment".into());
        let shown = format!("{config:?} {config:#?}");
        assert!(!shown.contains("s3cr3t-enrollment"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
