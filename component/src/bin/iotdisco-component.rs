//! `iotdisco-component`: the component alone, the same as `iotdisco
//! component` (the real-server tests run this binary of this crate).

use clap::Parser;

/// Runs the iotdisco Thing Registry as an XEP-0114 component.
#[derive(Parser)]
#[command(name = "iotdisco-component", version)]
struct Cli {
    #[command(flatten)]
    args: iotdisco_component::Args,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = iotdisco_component::run(cli.args) {
        eprintln!("iotdisco-component: {e}");
        std::process::exit(1);
    }
}
