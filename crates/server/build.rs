//! Marks the PostgreSQL tests ignored, with the reason, when `TEST_DATABASE_URL` is
//! not set: a test that cannot run must say so, not pass.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_postgres_tests)");
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    if std::env::var_os("TEST_DATABASE_URL").is_none_or(|url| url.is_empty()) {
        println!("cargo::rustc-cfg=no_postgres_tests");
    }
}
