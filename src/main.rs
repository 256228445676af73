//! `specbot`: parse the command line and hand over to the library.

use clap::Parser;

#[tokio::main]
async fn main() {
    let _ = dotenvy::dotenv();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = specbot::cli::Cli::parse();
    std::process::exit(specbot::cli::run(cli).await);
}
