//! In-repo HTTP test servers (filled in by the API tests).
